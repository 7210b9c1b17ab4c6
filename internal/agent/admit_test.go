package agent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestHostPortsConflict(t *testing.T) {
	pod := func(ports ...corev1.ContainerPort) *corev1.Pod {
		return &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Ports: ports}}}}
	}
	any21017 := pod(corev1.ContainerPort{ContainerPort: 21017, HostPort: 21017})
	for _, tc := range []struct {
		name string
		a, b *corev1.Pod
		want bool
	}{
		{"same port, both on every address", any21017, any21017, true},
		{"every address overlaps one", any21017, pod(corev1.ContainerPort{ContainerPort: 80, HostPort: 21017, HostIP: "192.0.2.1"}), true},
		{"two host IPs", pod(corev1.ContainerPort{HostPort: 80, HostIP: "127.0.0.1"}), pod(corev1.ContainerPort{HostPort: 80, HostIP: "192.0.2.1"}), false},
		{"two protocols", any21017, pod(corev1.ContainerPort{HostPort: 21017, Protocol: corev1.ProtocolUDP}), false},
		{"TCP is the default", any21017, pod(corev1.ContainerPort{HostPort: 21017, Protocol: corev1.ProtocolTCP}), true},
		{"no host port", any21017, pod(corev1.ContainerPort{ContainerPort: 21017}), false},
	} {
		if got := hostPortsConflict(hostPorts(tc.a), hostPorts(tc.b)); got != tc.want {
			t.Errorf("%s: conflict = %v, want %v", tc.name, got, tc.want)
		}
	}
}
