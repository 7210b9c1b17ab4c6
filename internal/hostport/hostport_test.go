package hostport

import (
	"net/netip"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestFromPods(t *testing.T) {
	pod := func(name, ip string, mod func(*corev1.Pod), ports ...corev1.ContainerPort) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Ports: ports}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip}}
		if mod != nil {
			mod(p)
		}
		return p
	}
	now := metav1.Now()
	got := FromPods([]*corev1.Pod{
		pod("udp", "10.244.1.3", nil, corev1.ContainerPort{ContainerPort: 53, HostPort: 5353, Protocol: corev1.ProtocolUDP, HostIP: "192.0.2.1"}),
		pod("web", "10.244.1.2", nil,
			corev1.ContainerPort{ContainerPort: 8080, HostPort: 80},
			corev1.ContainerPort{ContainerPort: 9090}, // no host port
			corev1.ContainerPort{ContainerPort: 8443, HostPort: 443, HostIP: "0.0.0.0"},
			corev1.ContainerPort{ContainerPort: 8081, HostPort: 81, HostIP: "fd00::1"}), // not IPv4
		pod("pending", "", nil, corev1.ContainerPort{ContainerPort: 1, HostPort: 1}),
		pod("hostnet", "192.0.2.1", func(p *corev1.Pod) { p.Spec.HostNetwork = true }, corev1.ContainerPort{ContainerPort: 2, HostPort: 2}),
		pod("done", "10.244.1.4", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }, corev1.ContainerPort{ContainerPort: 3, HostPort: 3}),
		pod("leaving", "10.244.1.5", func(p *corev1.Pod) { p.DeletionTimestamp = &now }, corev1.ContainerPort{ContainerPort: 4, HostPort: 4}),
	})
	ip := netip.MustParseAddr
	want := []Mapping{
		{HostPort: 80, Protocol: corev1.ProtocolTCP, PodIP: ip("10.244.1.2"), ContainerPort: 8080},
		{HostPort: 443, Protocol: corev1.ProtocolTCP, PodIP: ip("10.244.1.2"), ContainerPort: 8443},
		{HostIP: ip("192.0.2.1"), HostPort: 5353, Protocol: corev1.ProtocolUDP, PodIP: ip("10.244.1.3"), ContainerPort: 53},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FromPods:\n got %+v\nwant %+v", got, want)
	}
}
