package registry

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
)

// Scale serves the /scale subresource (autoscaling/v1 Scale) of a
// workload: `kubectl scale` and autoscalers read and write spec.replicas
// through it.
type Scale struct {
	store *genericregistry.Store
	kind  *Kind
}

// NewScale returns the scale subresource of a workload store.
func NewScale(store *genericregistry.Store, k *Kind) *Scale { return &Scale{store: store, kind: k} }

// New implements rest.Storage.
func (s *Scale) New() runtime.Object { return &autoscalingv1.Scale{} }

// Destroy implements rest.Storage.
func (s *Scale) Destroy() {}

// Get returns the Scale of the named object.
func (s *Scale) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	obj, err := s.store.Get(ctx, name, options)
	if err != nil {
		return nil, err
	}
	return toScale(obj)
}

// Update changes spec.replicas of the named object.
func (s *Scale) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, forceAllowCreate bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	obj, _, err := s.store.Update(ctx, name, rest.DefaultUpdatedObjectInfo(nil, func(ctx context.Context, newObj, oldObj runtime.Object) (runtime.Object, error) {
		oldScale, err := toScale(oldObj)
		if err != nil {
			return nil, err
		}
		in, err := objInfo.UpdatedObject(ctx, oldScale)
		if err != nil {
			return nil, err
		}
		sc, ok := in.(*autoscalingv1.Scale)
		if !ok {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("expected Scale, got %T", in))
		}
		if sc.Spec.Replicas < 0 {
			return nil, apierrors.NewInvalid(autoscalingv1.SchemeGroupVersion.WithKind("Scale").GroupKind(), name,
				field.ErrorList{field.Invalid(field.NewPath("spec", "replicas"), sc.Spec.Replicas, "must be greater than or equal to 0")})
		}
		if sc.ResourceVersion != "" && sc.ResourceVersion != oldScale.ResourceVersion {
			return nil, apierrors.NewConflict(s.kind.GroupResource(), name, fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
		}
		out := oldObj.DeepCopyObject()
		setReplicas(out, sc.Spec.Replicas)
		return out, nil
	}), createValidation, func(ctx context.Context, obj, old runtime.Object) error { return nil }, false, options)
	if err != nil {
		return nil, false, err
	}
	sc, err := toScale(obj)
	return sc, false, err
}

// ConvertToTable implements rest.TableConvertor with name and age.
func (s *Scale) ConvertToTable(ctx context.Context, object runtime.Object, tableOptions runtime.Object) (*metav1.Table, error) {
	return rest.NewDefaultTableConvertor(s.kind.GroupResource()).ConvertToTable(ctx, object, tableOptions)
}

func toScale(obj runtime.Object) (*autoscalingv1.Scale, error) {
	var (
		m        metav1.ObjectMeta
		spec     int32
		status   int32
		selector *metav1.LabelSelector
	)
	switch o := obj.(type) {
	case *corev1.ReplicationController:
		m, spec, status = o.ObjectMeta, deref(o.Spec.Replicas), o.Status.Replicas
		selector = &metav1.LabelSelector{MatchLabels: o.Spec.Selector}
	case *appsv1.Deployment:
		m, spec, status, selector = o.ObjectMeta, deref(o.Spec.Replicas), o.Status.Replicas, o.Spec.Selector
	case *appsv1.ReplicaSet:
		m, spec, status, selector = o.ObjectMeta, deref(o.Spec.Replicas), o.Status.Replicas, o.Spec.Selector
	case *appsv1.StatefulSet:
		m, spec, status, selector = o.ObjectMeta, deref(o.Spec.Replicas), o.Status.Replicas, o.Spec.Selector
	default:
		return nil, fmt.Errorf("%T has no scale subresource", obj)
	}
	sel := ""
	if selector != nil {
		ls, err := metav1.LabelSelectorAsSelector(selector)
		if err != nil {
			return nil, err
		}
		sel = ls.String()
	} else {
		sel = labels.Everything().String()
	}
	return &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion, CreationTimestamp: m.CreationTimestamp},
		Spec:       autoscalingv1.ScaleSpec{Replicas: spec},
		Status:     autoscalingv1.ScaleStatus{Replicas: status, Selector: sel},
	}, nil
}

func setReplicas(obj runtime.Object, n int32) {
	switch o := obj.(type) {
	case *corev1.ReplicationController:
		o.Spec.Replicas = &n
	case *appsv1.Deployment:
		o.Spec.Replicas = &n
	case *appsv1.ReplicaSet:
		o.Spec.Replicas = &n
	case *appsv1.StatefulSet:
		o.Spec.Replicas = &n
	}
}

func deref(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// GroupVersionKind tells discovery that /scale serves autoscaling/v1 Scale.
func (s *Scale) GroupVersionKind(schema.GroupVersion) schema.GroupVersionKind {
	return autoscalingv1.SchemeGroupVersion.WithKind("Scale")
}
