package printers

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/printers"
)

// kubectlGet renders a table the way `kubectl get` does: the server's table
// goes over the wire as JSON and kubectl's table printer lays it out.
func kubectlGet(t *testing.T, c *TableConvertor, obj runtime.Object, wide bool) string {
	t.Helper()
	table := convert(t, c, obj, &metav1.TableOptions{})
	raw, err := json.Marshal(table)
	if err != nil {
		t.Fatal(err)
	}
	var decoded metav1.Table
	if err := json.Unmarshal(raw, &decoded); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := printers.NewTablePrinter(printers.PrintOptions{Wide: wide}).PrintObj(&decoded, &out); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestKubectlRendering(t *testing.T) {
	services := &corev1.ServiceList{Items: []corev1.Service{
		*svc("kubernetes", corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIPs: []string{"10.96.0.1"}, Ports: []corev1.ServicePort{{Port: 443, Protocol: corev1.ProtocolTCP}}}),
		*svc("my-nodeport", corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIPs: []string{"10.96.8.12"}, Ports: []corev1.ServicePort{{Port: 3000, NodePort: 32425, Protocol: corev1.ProtocolTCP}}, Selector: map[string]string{"app": "play"}}),
		*svc("my-database", corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "my.database.example.com"}),
	}}
	pods := &corev1.PodList{Items: []corev1.Pod{
		*podWith([]string{"app"}, corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
			withLastTermination(waiting("app", "CrashLoopBackOff", 5), 3*time.Minute)}}, scheduled),
	}}
	tests := []struct {
		name string
		c    *TableConvertor
		obj  runtime.Object
		wide bool
		want string
	}{
		{
			name: "get services",
			c:    ServiceTable(), obj: services,
			want: "" +
				"NAME          TYPE           CLUSTER-IP   EXTERNAL-IP               PORT(S)          AGE\n" +
				"kubernetes    ClusterIP      10.96.0.1    <none>                    443/TCP          10m\n" +
				"my-nodeport   NodePort       10.96.8.12   <none>                    3000:32425/TCP   10m\n" +
				"my-database   ExternalName   <none>       my.database.example.com   <none>           10m\n",
		},
		{
			name: "get services -o wide",
			c:    ServiceTable(), obj: services, wide: true,
			want: "" +
				"NAME          TYPE           CLUSTER-IP   EXTERNAL-IP               PORT(S)          AGE   SELECTOR\n" +
				"kubernetes    ClusterIP      10.96.0.1    <none>                    443/TCP          10m   <none>\n" +
				"my-nodeport   NodePort       10.96.8.12   <none>                    3000:32425/TCP   10m   app=play\n" +
				"my-database   ExternalName   <none>       my.database.example.com   <none>           10m   <none>\n",
		},
		{
			name: "get pods -o wide",
			c:    PodTable(), obj: pods, wide: true,
			want: "" +
				"NAME   READY   STATUS             RESTARTS     AGE   IP           NODE     NOMINATED NODE   READINESS GATES\n" +
				"p      0/1     CrashLoopBackOff   5 (3m ago)   3d    10.244.1.7   node-1   <none>           <none>\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := kubectlGet(t, tt.c, tt.obj, tt.wide); got != tt.want {
				t.Errorf("output mismatch\n got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}
