package core

import (
	"encoding/json"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func seedService() *Service {
	return &Service{
		ObjectMeta: metav1.ObjectMeta{Name: "my-service", Namespace: "default", Labels: map[string]string{"a": "b"}},
		Spec: ServiceSpec{
			ServiceSpec: corev1.ServiceSpec{
				Type:      corev1.ServiceTypeClusterIP,
				ClusterIP: "10.0.0.7",
				Selector:  map[string]string{"app.kubernetes.io/name": "MyApp"},
				Ports:     []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(9376)}},
			},
			TopologyKeys: []string{"kubernetes.io/hostname", "*"},
		},
	}
}

func TestJSONKeepsTopologyKeysInsideSpec(t *testing.T) {
	b, err := json.Marshal(seedService())
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if got := raw["spec"]["topologyKeys"]; !reflect.DeepEqual(got, []any{"kubernetes.io/hostname", "*"}) {
		t.Fatalf("spec.topologyKeys = %v in %s", got, b)
	}
	if raw["spec"]["clusterIP"] != "10.0.0.7" {
		t.Fatalf("v1 fields not inlined into spec: %s", b)
	}
	var back Service
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Spec, seedService().Spec) {
		t.Fatalf("round trip: got %+v", back.Spec)
	}
}

func TestProtobufRoundTripAndUpstreamCompatibility(t *testing.T) {
	in := seedService()
	b, err := in.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var out Service
	if err := out.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out.Spec, in.Spec) || out.Name != "my-service" {
		t.Fatalf("round trip: got %+v", out)
	}
	// An upstream client decodes the same bytes and just skips field 16.
	var up corev1.Service
	if err := up.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	if up.Spec.ClusterIP != "10.0.0.7" || up.Name != "my-service" || up.Spec.Ports[0].Port != 80 {
		t.Fatalf("upstream decode: %+v", up)
	}
	// And we decode upstream bytes.
	ub, _ := up.Marshal()
	var fromUp Service
	if err := fromUp.Unmarshal(ub); err != nil || fromUp.Spec.ClusterIP != "10.0.0.7" || fromUp.Spec.TopologyKeys != nil {
		t.Fatalf("decode upstream: %v %+v", err, fromUp.Spec)
	}
	buf := make([]byte, in.Size()+5)
	n, err := in.MarshalToSizedBuffer(buf)
	if err != nil || n != len(b) || string(buf[len(buf)-n:]) != string(b) {
		t.Fatalf("MarshalToSizedBuffer: n=%d err=%v", n, err)
	}
}

func TestListProtobufRoundTrip(t *testing.T) {
	l := &ServiceList{ListMeta: metav1.ListMeta{ResourceVersion: "42"}, Items: []Service{*seedService(), *seedService()}}
	l.Items[1].Name = "other"
	b, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var out ServiceList
	if err := out.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	if out.ResourceVersion != "42" || len(out.Items) != 2 || out.Items[1].Name != "other" || len(out.Items[0].Spec.TopologyKeys) != 2 {
		t.Fatalf("got %+v", out)
	}
	var up corev1.ServiceList
	if err := up.Unmarshal(b); err != nil || len(up.Items) != 2 {
		t.Fatalf("upstream list decode: %v", err)
	}
}

func TestDeepCopyIsIndependent(t *testing.T) {
	in := seedService()
	c := in.DeepCopy()
	c.Spec.TopologyKeys[0] = "x"
	c.Spec.Ports[0].Port = 1
	c.Labels["a"] = "z"
	if in.Spec.TopologyKeys[0] != "kubernetes.io/hostname" || in.Spec.Ports[0].Port != 80 || in.Labels["a"] != "b" {
		t.Fatal("deep copy shares memory")
	}
}
