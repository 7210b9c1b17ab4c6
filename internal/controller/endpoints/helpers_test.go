package endpoints

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func svc(name string, mut ...func(*v1.Service)) *v1.Service {
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

func pod(name, app, ip string, ready bool, mut ...func(*v1.Pod)) *v1.Pod {
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

func pods(n int, app string) []*v1.Pod {
	out := make([]*v1.Pod, n)
	for i := range out {
		out[i] = pod(fmt.Sprintf("p%03d", i), app, fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), true)
	}
	return out
}

func terminating(p *v1.Pod) {
	now := metav1.Now()
	p.DeletionTimestamp = &now
}

func containerPort(name string, n int32) func(*v1.Pod) {
	return func(p *v1.Pod) {
		p.Spec.Containers[0].Ports = []v1.ContainerPort{{Name: name, ContainerPort: n, Protocol: v1.ProtocolTCP}}
	}
}

func b(v *bool) string {
	if v == nil {
		return "nil"
	}
	return fmt.Sprint(*v)
}

func s(v *string) string {
	if v == nil {
		return "nil"
	}
	return *v
}
