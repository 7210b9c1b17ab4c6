package core

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Service is core/v1 Service with ServiceSpec extended by TopologyKeys.
type Service struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ServiceSpec          `json:"spec,omitempty"`
	Status corev1.ServiceStatus `json:"status,omitempty"`
}

// ServiceSpec is core/v1 ServiceSpec plus the removed topologyKeys field.
type ServiceSpec struct {
	corev1.ServiceSpec `json:",inline"`

	// TopologyKeys is the preference-ordered list of topology label keys
	// (kubernetes.io/hostname, topology.kubernetes.io/zone, ..., "*") the
	// seed documents use. portal keeps it; new manifests should use
	// spec.trafficDistribution.
	TopologyKeys []string `json:"topologyKeys,omitempty"`
}

// ServiceList is a list of Services.
type ServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []Service `json:"items"`
}

// OpenAPIModelName keeps the upstream schema names so kubectl explain and
// server-side apply find "io.k8s.api.core.v1.Service".
func (Service) OpenAPIModelName() string { return "io.k8s.api.core.v1.Service" }

// OpenAPIModelName see Service.OpenAPIModelName.
func (ServiceList) OpenAPIModelName() string { return "io.k8s.api.core.v1.ServiceList" }

// OpenAPIModelName see Service.OpenAPIModelName.
func (ServiceSpec) OpenAPIModelName() string { return "io.k8s.api.core.v1.ServiceSpec" }

// V1 returns the object as a k8s.io/api Service. The result shares slices
// and maps with s; use DeepCopy first when either side will be mutated
// independently.
func (s *Service) V1() *corev1.Service {
	return &corev1.Service{TypeMeta: s.TypeMeta, ObjectMeta: s.ObjectMeta, Spec: s.Spec.ServiceSpec, Status: s.Status}
}

// FromV1 builds a Service from a k8s.io/api Service and topology keys.
// Slices and maps are shared, not copied.
func FromV1(in *corev1.Service, topologyKeys []string) *Service {
	return &Service{
		TypeMeta:   in.TypeMeta,
		ObjectMeta: in.ObjectMeta,
		Spec:       ServiceSpec{ServiceSpec: in.Spec, TopologyKeys: topologyKeys},
		Status:     in.Status,
	}
}

// Update copies the v1 fields of in back into s, keeping s's TopologyKeys.
// Used after code written against k8s.io/api types mutated a V1() view.
func (s *Service) Update(in *corev1.Service) {
	s.TypeMeta, s.ObjectMeta, s.Spec.ServiceSpec, s.Status = in.TypeMeta, in.ObjectMeta, in.Spec, in.Status
}

// DeepCopyInto copies s into out.
func (s *Service) DeepCopyInto(out *Service) {
	*out = *s
	out.TypeMeta = s.TypeMeta
	s.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	s.Spec.DeepCopyInto(&out.Spec)
	s.Status.DeepCopyInto(&out.Status)
}

// DeepCopy returns a deep copy.
func (s *Service) DeepCopy() *Service {
	if s == nil {
		return nil
	}
	out := new(Service)
	s.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (s *Service) DeepCopyObject() runtime.Object { return s.DeepCopy() }

// DeepCopyInto copies s into out.
func (s *ServiceSpec) DeepCopyInto(out *ServiceSpec) {
	s.ServiceSpec.DeepCopyInto(&out.ServiceSpec)
	if s.TopologyKeys != nil {
		out.TopologyKeys = append([]string(nil), s.TopologyKeys...)
	} else {
		out.TopologyKeys = nil
	}
}

// DeepCopyInto copies l into out.
func (l *ServiceList) DeepCopyInto(out *ServiceList) {
	*out = *l
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	if l.Items != nil {
		out.Items = make([]Service, len(l.Items))
		for i := range l.Items {
			l.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
}

// DeepCopy returns a deep copy.
func (l *ServiceList) DeepCopy() *ServiceList {
	if l == nil {
		return nil
	}
	out := new(ServiceList)
	l.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (l *ServiceList) DeepCopyObject() runtime.Object { return l.DeepCopy() }
