package podutil

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestFindPort(t *testing.T) {
	pod := &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{Ports: []v1.ContainerPort{
		{Name: "http", ContainerPort: 8080},
		{Name: "dns", ContainerPort: 5353, Protocol: v1.ProtocolUDP},
	}}}}}
	tests := []struct {
		name string
		sp   v1.ServicePort
		want int32
		err  bool
	}{
		{"numeric", v1.ServicePort{Port: 80, TargetPort: intstr.FromInt32(9000)}, 9000, false},
		{"unset targetPort is the port", v1.ServicePort{Port: 80}, 80, false},
		{"named, protocol defaulted", v1.ServicePort{Port: 80, TargetPort: intstr.FromString("http"), Protocol: v1.ProtocolTCP}, 8080, false},
		{"named UDP", v1.ServicePort{Port: 53, TargetPort: intstr.FromString("dns"), Protocol: v1.ProtocolUDP}, 5353, false},
		{"named, wrong protocol", v1.ServicePort{Port: 53, TargetPort: intstr.FromString("dns")}, 0, true},
		{"missing name", v1.ServicePort{Port: 80, TargetPort: intstr.FromString("grpc")}, 0, true},
	}
	for _, tt := range tests {
		got, err := FindPort(pod, &tt.sp)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("%s: got %d, %v; want %d, err=%v", tt.name, got, err, tt.want, tt.err)
		}
	}
}

func TestIPv4(t *testing.T) {
	p := &v1.Pod{Status: v1.PodStatus{PodIP: "fd00::1", PodIPs: []v1.PodIP{{IP: "fd00::1"}, {IP: "10.0.0.1"}}}}
	if got := IPv4(p); got != "10.0.0.1" {
		t.Errorf("dual-stack pod: IPv4 = %q", got)
	}
}
