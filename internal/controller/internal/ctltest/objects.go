package ctltest

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Service is a ClusterIP Service name in "default" selecting app=name, with
// port http 80 → 8080/TCP; mut adjusts it.
func Service(name string, mut ...func(*v1.Service)) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
		Spec: v1.ServiceSpec{
			Selector:  map[string]string{"app": name},
			ClusterIP: "10.96.0.10",
			Ports:     []v1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: v1.ProtocolTCP}},
		},
	}
	for _, m := range mut {
		m(s)
	}
	return s
}

// Pod is a Running pod name in "default" labelled app=app on node-a, with
// container port http 8080/TCP, address ip and the given readiness; mut
// adjusts it.
func Pod(name, app, ip string, ready bool, mut ...func(*v1.Pod)) *v1.Pod {
	st := v1.ConditionFalse
	if ready {
		st = v1.ConditionTrue
	}
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name), Labels: map[string]string{"app": app}},
		Spec: v1.PodSpec{
			NodeName:   "node-a",
			Containers: []v1.Container{{Name: "c", Ports: []v1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: v1.ProtocolTCP}}}},
		},
		Status: v1.PodStatus{
			Phase:      v1.PodRunning,
			PodIP:      ip,
			PodIPs:     []v1.PodIP{{IP: ip}},
			Conditions: []v1.PodCondition{{Type: v1.PodReady, Status: st}},
		},
	}
	for _, m := range mut {
		m(p)
	}
	return p
}

// Pods is n ready Pods of app named p000, p001, … with distinct addresses.
func Pods(n int, app string) []*v1.Pod {
	out := make([]*v1.Pod, n)
	for i := range out {
		out[i] = Pod(fmt.Sprintf("p%03d", i), app, fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), true)
	}
	return out
}

// Terminating marks p as being deleted.
func Terminating(p *v1.Pod) {
	now := metav1.Now()
	p.DeletionTimestamp = &now
}

// ContainerPort replaces the pod's container ports with one named port.
func ContainerPort(name string, n int32) func(*v1.Pod) {
	return func(p *v1.Pod) {
		p.Spec.Containers[0].Ports = []v1.ContainerPort{{Name: name, ContainerPort: n, Protocol: v1.ProtocolTCP}}
	}
}

// RunningReady returns a status change that reports the pod running and
// Ready at ip, as a node agent would once its probes pass.
func RunningReady(ip string) func(*v1.PodStatus) {
	return func(s *v1.PodStatus) {
		s.Phase = v1.PodRunning
		s.PodIP = ip
		s.PodIPs = []v1.PodIP{{IP: ip}}
		s.Conditions = []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue, LastTransitionTime: metav1.Now()}}
	}
}

// PodNames joins the pods' names with commas, in the given order.
func PodNames(pods []v1.Pod) string {
	n := make([]string, 0, len(pods))
	for _, p := range pods {
		n = append(n, p.Name)
	}
	return strings.Join(n, ",")
}

// Bool renders an optional bool, "nil" when unset.
func Bool(v *bool) string {
	if v == nil {
		return "nil"
	}
	return fmt.Sprint(*v)
}

// String renders an optional string, "nil" when unset.
func String(v *string) string {
	if v == nil {
		return "nil"
	}
	return *v
}
