package apiserver

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/portal-net/portal/internal/api/core"
	"github.com/portal-net/portal/internal/api/defaults"
)

// defaulter registers fn as the defaulting function of T and of its list.
func defaulter[T runtime.Object](s *runtime.Scheme, fn func(T)) {
	var zero T
	s.AddTypeDefaultingFunc(zero, func(obj interface{}) { fn(obj.(T)) })
}

func listDefaulter[L runtime.Object, T any](s *runtime.Scheme, items func(L) []T, fn func(*T)) {
	var zero L
	s.AddTypeDefaultingFunc(zero, func(obj interface{}) {
		list := items(obj.(L))
		for i := range list {
			fn(&list[i])
		}
	})
}

// addDefaulting installs the defaulting functions; the codecs apply them
// when decoding requests (and objects read back from etcd), as Kubernetes'
// generated defaulters do.
func addDefaulting(s *runtime.Scheme) {
	defaulter(s, serviceDefaults)
	listDefaulter(s, func(l *core.ServiceList) []core.Service { return l.Items }, serviceDefaults)
	defaulter(s, defaults.Pod)
	listDefaulter(s, func(l *corev1.PodList) []corev1.Pod { return l.Items }, defaults.Pod)
	defaulter(s, defaults.Endpoints)
	defaulter(s, defaults.EndpointSlice)
	defaulter(s, defaults.Secret)
	defaulter(s, defaults.ReplicationController)
	defaulter(s, defaults.ReplicaSet)
	defaulter(s, defaults.Deployment)
	defaulter(s, defaults.StatefulSet)
	defaulter(s, defaults.DaemonSet)
	defaulter(s, func(t *corev1.PodTemplate) { defaults.PodTemplateSpec(&t.Template) })
}

func serviceDefaults(s *core.Service) {
	v := s.V1()
	defaults.Service(v)
	s.Update(v)
}
