package printers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/portal-net/portal/internal/api/core"
)

func TestServiceColumns(t *testing.T) {
	assertColumns(t, ServiceTable(), []col{
		{"Name", 0}, {"Type", 0}, {"Cluster-IP", 0}, {"External-IP", 0}, {"Port(s)", 0}, {"Age", 0}, {"Selector", 1},
	})
}

func svc(name string, spec corev1.ServiceSpec) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: ago(10 * time.Minute)},
		Spec:       spec,
	}
}

func TestServiceRows(t *testing.T) {
	tcp := func(port, nodePort int32) corev1.ServicePort {
		return corev1.ServicePort{Port: port, NodePort: nodePort, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(port)}
	}
	lbPending := svc("frontend", corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.0.171.239"}, Ports: []corev1.ServicePort{tcp(80, 31000)}, Selector: map[string]string{"app": "web"}})
	lbReady := lbPending.DeepCopy()
	lbReady.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.127"}, {Hostname: "lb.example.com"}, {IP: "192.0.2.127"}}
	lbWithExternal := lbReady.DeepCopy()
	lbWithExternal.Spec.ExternalIPs = []string{"198.51.100.7"}
	lbHostnameOnly := lbPending.DeepCopy()
	lbHostnameOnly.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{Hostname: "a1b2c3-1234567890.us-west-2.elb.amazonaws.com"}}

	tests := []struct {
		name string
		obj  runtime.Object
		want []interface{}
	}{
		{
			name: "NodePort with nodePort shows port:nodePort",
			obj: svc("my-nodeport", corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.8.12", ClusterIPs: []string{"10.96.8.12"},
				Ports: []corev1.ServicePort{tcp(3000, 32425)}, Selector: map[string]string{"app": "play"}}),
			want: []interface{}{"my-nodeport", "NodePort", "10.96.8.12", "<none>", "3000:32425/TCP", "10m", "app=play"},
		},
		{
			name: "ClusterIP seed example",
			obj: svc("play-app-svc", corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.47.251.158", ClusterIPs: []string{"10.47.251.158"},
				Ports: []corev1.ServicePort{tcp(9000, 0)}, Selector: map[string]string{"app": "play-app", "tier": "backend"}}),
			want: []interface{}{"play-app-svc", "ClusterIP", "10.47.251.158", "<none>", "9000/TCP", "10m", "app=play-app,tier=backend"},
		},
		{
			name: "ExternalName without cluster IP or ports",
			obj:  svc("my-database", corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "my.database.example.com"}),
			want: []interface{}{"my-database", "ExternalName", "<none>", "my.database.example.com", "<none>", "10m", "<none>"},
		},
		{
			name: "headless",
			obj: svc("db", corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "None", ClusterIPs: []string{"None"},
				Ports: []corev1.ServicePort{tcp(5432, 0)}, Selector: map[string]string{"app": "db"}}),
			want: []interface{}{"db", "ClusterIP", "None", "<none>", "5432/TCP", "10m", "app=db"},
		},
		{
			name: "undefaulted object with only the singular clusterIP",
			obj:  svc("legacy", corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.0.0.10", Ports: []corev1.ServicePort{tcp(53, 0)}}),
			want: []interface{}{"legacy", "ClusterIP", "10.0.0.10", "<none>", "53/TCP", "10m", "<none>"},
		},
		{
			name: "multi-port multi-protocol with externalIPs",
			obj: svc("dns", corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIPs: []string{"10.96.0.10", "fd00::a"}, ExternalIPs: []string{"203.0.113.5", "203.0.113.6"},
				Ports: []corev1.ServicePort{{Port: 53, Protocol: corev1.ProtocolUDP}, {Port: 53, Protocol: corev1.ProtocolTCP}, {Port: 9153, Protocol: corev1.ProtocolTCP}}}),
			want: []interface{}{"dns", "ClusterIP", "10.96.0.10", "203.0.113.5,203.0.113.6", "53/UDP,53/TCP,9153/TCP", "10m", "<none>"},
		},
		{
			name: "LoadBalancer pending",
			obj:  lbPending,
			want: []interface{}{"frontend", "LoadBalancer", "10.0.171.239", "<pending>", "80:31000/TCP", "10m", "app=web"},
		},
		{
			name: "LoadBalancer with ingress: distinct, sorted, IP else hostname",
			obj:  lbReady,
			want: []interface{}{"frontend", "LoadBalancer", "10.0.171.239", "192.0.2.127,lb.example.com", "80:31000/TCP", "10m", "app=web"},
		},
		{
			name: "LoadBalancer ingress followed by externalIPs",
			obj:  lbWithExternal,
			want: []interface{}{"frontend", "LoadBalancer", "10.0.171.239", "192.0.2.127,lb.example.com,198.51.100.7", "80:31000/TCP", "10m", "app=web"},
		},
		{
			name: "LoadBalancer long hostname is not clipped server-side",
			obj:  lbHostnameOnly,
			want: []interface{}{"frontend", "LoadBalancer", "10.0.171.239", "a1b2c3-1234567890.us-west-2.elb.amazonaws.com", "80:31000/TCP", "10m", "app=web"},
		},
		{
			name: "portal's own core.Service type",
			obj: core.FromV1(svc("kubernetes", corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIPs: []string{"10.96.0.1"},
				Ports: []corev1.ServicePort{tcp(443, 0)}}), []string{"kubernetes.io/hostname"}),
			want: []interface{}{"kubernetes", "ClusterIP", "10.96.0.1", "<none>", "443/TCP", "10m", "<none>"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertCells(t, cells(t, ServiceTable(), tt.obj), tt.want)
		})
	}
}

func TestServiceListOfPortalType(t *testing.T) {
	list := &core.ServiceList{
		ListMeta: metav1.ListMeta{ResourceVersion: "77"},
		Items: []core.Service{
			*core.FromV1(svc("a", corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIPs: []string{"10.0.0.1"}}), nil),
			*core.FromV1(svc("b", corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "b.example.com"}), nil),
		},
	}
	table := convert(t, ServiceTable(), list, nil)
	if table.ResourceVersion != "77" || len(table.Rows) != 2 {
		t.Fatalf("rv %q rows %d", table.ResourceVersion, len(table.Rows))
	}
	assertCells(t, table.Rows[1].Cells, []interface{}{"b", "ExternalName", "<none>", "b.example.com", "<none>", "10m", "<none>"})
	if _, ok := table.Rows[0].Object.Object.(*core.Service); !ok {
		t.Errorf("row object is %T, want *core.Service", table.Rows[0].Object.Object)
	}
}

func TestEndpointsRows(t *testing.T) {
	assertColumns(t, EndpointsTable(), []col{{"Name", 0}, {"Endpoints", 0}, {"Age", 0}})
	addrs := func(ips ...string) []corev1.EndpointAddress {
		var out []corev1.EndpointAddress
		for _, ip := range ips {
			out = append(out, corev1.EndpointAddress{IP: ip})
		}
		return out
	}
	ep := func(subsets ...corev1.EndpointSubset) *corev1.Endpoints {
		return &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "svc", CreationTimestamp: ago(4 * time.Hour)}, Subsets: subsets}
	}
	tests := []struct {
		name string
		obj  *corev1.Endpoints
		want string
	}{
		{"seed example", ep(corev1.EndpointSubset{Addresses: addrs("10.3.42.250"), Ports: []corev1.EndpointPort{{Port: 30050}}}), "10.3.42.250:30050"},
		{"no subsets", ep(), "<none>"},
		{"only not-ready addresses print empty, as upstream", ep(corev1.EndpointSubset{NotReadyAddresses: addrs("10.1.0.9"), Ports: []corev1.EndpointPort{{Port: 80}}}), ""},
		{"headless without ports lists bare IPs", ep(corev1.EndpointSubset{Addresses: addrs("10.1.0.1", "10.1.0.2")}), "10.1.0.1,10.1.0.2"},
		{"IPv6 is bracketed", ep(corev1.EndpointSubset{Addresses: addrs("fd00::1"), Ports: []corev1.EndpointPort{{Port: 8080}}}), "[fd00::1]:8080"},
		{
			"every port of every address, truncated after 3",
			ep(corev1.EndpointSubset{Addresses: addrs("10.1.0.1", "10.1.0.2"), Ports: []corev1.EndpointPort{{Name: "http", Port: 80}, {Name: "https", Port: 443}}},
				corev1.EndpointSubset{Addresses: addrs("10.2.0.1"), Ports: []corev1.EndpointPort{{Port: 9376}}}),
			"10.1.0.1:80,10.1.0.2:80,10.1.0.1:443 + 2 more...",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertCells(t, cells(t, EndpointsTable(), tt.obj), []interface{}{"svc", tt.want, "4h"})
		})
	}
}

func TestNodeRows(t *testing.T) {
	assertColumns(t, NodeTable(), []col{
		{"Name", 0}, {"Status", 0}, {"Roles", 0}, {"Age", 0}, {"Version", 0},
		{"Internal-IP", 1}, {"External-IP", 1}, {"OS-Image", 1}, {"Kernel-Version", 1}, {"Container-Runtime", 1},
	})
	ready := func(s corev1.ConditionStatus) []corev1.NodeCondition {
		return []corev1.NodeCondition{{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse}, {Type: corev1.NodeReady, Status: s}}
	}
	tests := []struct {
		name string
		node *corev1.Node
		want []interface{}
	}{
		{
			name: "ready control plane with full info",
			node: &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: "cp-1", CreationTimestamp: ago(30 * 24 * time.Hour), Labels: map[string]string{
					"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/etcd": "", "kubernetes.io/hostname": "cp-1",
				}},
				Status: corev1.NodeStatus{
					Conditions: ready(corev1.ConditionTrue),
					Addresses:  []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "cp-1"}, {Type: corev1.NodeInternalIP, Address: "192.168.1.10"}, {Type: corev1.NodeExternalIP, Address: "203.0.113.10"}},
					NodeInfo:   corev1.NodeSystemInfo{KubeletVersion: "v1.37.2", OSImage: "Debian GNU/Linux 13 (trixie)", KernelVersion: "6.12.0-1-amd64", ContainerRuntimeVersion: "containerd://2.1.0"},
				},
			},
			want: []interface{}{"cp-1", "Ready", "control-plane,etcd", "30d", "v1.37.2", "192.168.1.10", "203.0.113.10", "Debian GNU/Linux 13 (trixie)", "6.12.0-1-amd64", "containerd://2.1.0"},
		},
		{
			name: "not ready, cordoned, legacy role label",
			node: &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: "w-1", CreationTimestamp: ago(5 * time.Hour), Labels: map[string]string{"kubernetes.io/role": "worker"}},
				Spec:       corev1.NodeSpec{Unschedulable: true},
				Status:     corev1.NodeStatus{Conditions: ready(corev1.ConditionFalse), NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.37.2"}},
			},
			want: []interface{}{"w-1", "NotReady,SchedulingDisabled", "worker", "5h", "v1.37.2", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"},
		},
		{
			name: "Ready condition Unknown status counts as NotReady",
			node: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w-2", CreationTimestamp: ago(time.Minute)}, Status: corev1.NodeStatus{Conditions: ready(corev1.ConditionUnknown)}},
			want: []interface{}{"w-2", "NotReady", "<none>", "60s", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"},
		},
		{
			name: "no Ready condition is Unknown",
			node: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "new", Labels: map[string]string{"node-role.kubernetes.io/": ""}}, Spec: corev1.NodeSpec{Unschedulable: true}},
			want: []interface{}{"new", "Unknown,SchedulingDisabled", "<none>", "<unknown>", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertCells(t, cells(t, NodeTable(), tt.node), tt.want)
		})
	}
}

func TestEventRows(t *testing.T) {
	assertColumns(t, EventTable(), []col{
		{"Last Seen", 0}, {"Type", 0}, {"Reason", 0}, {"Object", 0}, {"Subobject", 1}, {"Source", 1},
		{"Message", 0}, {"First Seen", 1}, {"Count", 1}, {"Name", 1},
	})
	tests := []struct {
		name  string
		event *corev1.Event
		want  []interface{}
	}{
		{
			name: "legacy event",
			event: &corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{Name: "web-1.17f0a", Namespace: "default"},
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web-1", FieldPath: "spec.containers{nginx}"},
				Type:           corev1.EventTypeWarning, Reason: "BackOff", Message: "Back-off restarting failed container\n",
				Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
				FirstTimestamp: ago(time.Hour), LastTimestamp: ago(2 * time.Minute), Count: 12,
			},
			want: []interface{}{"2m", "Warning", "BackOff", "pod/web-1", "spec.containers{nginx}", "kubelet, node-1", "Back-off restarting failed container", "60m", int64(12), "web-1.17f0a"},
		},
		{
			name: "events.k8s.io style singleton",
			event: &corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{Name: "n.1"},
				InvolvedObject: corev1.ObjectReference{Kind: "Node"},
				Type:           corev1.EventTypeNormal, Reason: "Starting", Message: "Starting kubelet.",
				EventTime: metav1.NewMicroTime(testNow.Add(-30 * time.Second)), ReportingController: "kubelet", ReportingInstance: "node-2",
			},
			want: []interface{}{"30s", "Normal", "Starting", "node", "", "kubelet, node-2", "Starting kubelet.", "30s", int64(1), "n.1"},
		},
		{
			name: "series overrides last seen and count",
			event: &corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{Name: "s.1"},
				InvolvedObject: corev1.ObjectReference{Kind: "Deployment", Name: "web"},
				Type:           corev1.EventTypeNormal, Reason: "ScalingReplicaSet", Message: "Scaled up",
				EventTime: metav1.NewMicroTime(testNow.Add(-10 * time.Minute)), ReportingController: "deployment-controller",
				Series: &corev1.EventSeries{Count: 4, LastObservedTime: metav1.NewMicroTime(testNow.Add(-5 * time.Second))},
			},
			want: []interface{}{"5s", "Normal", "ScalingReplicaSet", "deployment/web", "", "deployment-controller", "Scaled up", "10m", int64(4), "s.1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertCells(t, cells(t, EventTable(), tt.event), tt.want)
		})
	}
}

func TestSmallCoreTables(t *testing.T) {
	created := metav1.ObjectMeta{Name: "x", CreationTimestamp: ago(26 * time.Hour)}
	tests := []struct {
		name    string
		c       *TableConvertor
		columns []col
		obj     runtime.Object
		want    []interface{}
	}{
		{
			name: "namespace", c: NamespaceTable(), columns: []col{{"Name", 0}, {"Status", 0}, {"Age", 0}},
			obj:  &corev1.Namespace{ObjectMeta: created, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
			want: []interface{}{"x", "Active", "26h"},
		},
		{
			name: "configmap counts text and binary keys", c: ConfigMapTable(), columns: []col{{"Name", 0}, {"Data", 0}, {"Age", 0}},
			obj:  &corev1.ConfigMap{ObjectMeta: created, Data: map[string]string{"a": "1", "b": "2"}, BinaryData: map[string][]byte{"c": {0}}},
			want: []interface{}{"x", int64(3), "26h"},
		},
		{
			name: "secret", c: SecretTable(), columns: []col{{"Name", 0}, {"Type", 0}, {"Data", 0}, {"Age", 0}},
			obj:  &corev1.Secret{ObjectMeta: created, Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": nil, "tls.key": nil}},
			want: []interface{}{"x", "kubernetes.io/tls", int64(2), "26h"},
		},
		{
			name: "serviceaccount has no secrets count any more", c: ServiceAccountTable(), columns: []col{{"Name", 0}, {"Age", 0}},
			obj:  &corev1.ServiceAccount{ObjectMeta: created, Secrets: []corev1.ObjectReference{{Name: "legacy-token"}}},
			want: []interface{}{"x", "26h"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertColumns(t, tt.c, tt.columns)
			assertCells(t, cells(t, tt.c, tt.obj), tt.want)
		})
	}
}
