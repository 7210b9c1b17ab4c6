package replicaset

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// owner is a ReplicaSet or a ReplicationController seen through the fields
// the controller reads. Implementations wrap cached objects and must not be
// mutated.
type owner interface {
	metav1.Object
	// Object is the wrapped API object, for events.
	Object() runtime.Object
	Replicas() int32
	MinReadySeconds() int32
	// Selector returns the pod selector; an empty selector matches nothing,
	// as a controller must never claim every pod in its namespace.
	Selector() (labels.Selector, error)
	// Template is nil only on objects the API server would have rejected.
	Template() *v1.PodTemplateSpec
	Status() replicaStatus
}

// replicaStatus is the kind-neutral status both kinds report.
type replicaStatus struct {
	Replicas             int32
	FullyLabeledReplicas int32
	ReadyReplicas        int32
	AvailableReplicas    int32
	// TerminatingReplicas is nil for kinds without the field.
	TerminatingReplicas *int32
	ObservedGeneration  int64
	Conditions          []condition
}

// condition mirrors ReplicaSetCondition and ReplicationControllerCondition,
// which have the same shape.
type condition struct {
	Type               string
	Status             v1.ConditionStatus
	LastTransitionTime metav1.Time
	Reason             string
	Message            string
}

// kind is the typed access to one owner kind.
type kind interface {
	GVK() schema.GroupVersionKind
	// HasTerminatingReplicas says whether the status has the field.
	HasTerminatingReplicas() bool
	Informer() cache.SharedIndexInformer
	Wrap(obj interface{}) (owner, bool)
	Get(namespace, name string) (owner, error)
	List(namespace string) ([]owner, error)
	// GetFresh reads from the API, not the cache.
	GetFresh(ctx context.Context, namespace, name string) (owner, error)
	UpdateStatus(ctx context.Context, o owner, st replicaStatus) (owner, error)
}

// --- apps/v1 ReplicaSet ---

type rsOwner struct{ *appsv1.ReplicaSet }

func (o rsOwner) Object() runtime.Object { return o.ReplicaSet }

func (o rsOwner) Replicas() int32 {
	if o.Spec.Replicas == nil {
		return 1 // the API default
	}
	return *o.Spec.Replicas
}

func (o rsOwner) MinReadySeconds() int32 { return o.Spec.MinReadySeconds }

func (o rsOwner) Selector() (labels.Selector, error) {
	if o.Spec.Selector == nil {
		return labels.Nothing(), nil
	}
	s, err := metav1.LabelSelectorAsSelector(o.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("selector of replicaset %s/%s: %w", o.Namespace, o.Name, err)
	}
	if s.Empty() {
		return labels.Nothing(), nil
	}
	return s, nil
}

func (o rsOwner) Template() *v1.PodTemplateSpec { return &o.Spec.Template }

func (o rsOwner) Status() replicaStatus {
	s := o.ReplicaSet.Status
	out := replicaStatus{
		Replicas:             s.Replicas,
		FullyLabeledReplicas: s.FullyLabeledReplicas,
		ReadyReplicas:        s.ReadyReplicas,
		AvailableReplicas:    s.AvailableReplicas,
		TerminatingReplicas:  s.TerminatingReplicas,
		ObservedGeneration:   s.ObservedGeneration,
	}
	for _, c := range s.Conditions {
		out.Conditions = append(out.Conditions, condition{string(c.Type), c.Status, c.LastTransitionTime, c.Reason, c.Message})
	}
	return out
}

type rsKind struct {
	client kubernetes.Interface
	inf    cache.SharedIndexInformer
	lister appslisters.ReplicaSetLister
}

func newRSKind(client kubernetes.Interface, f informers.SharedInformerFactory) *rsKind {
	i := f.Apps().V1().ReplicaSets()
	return &rsKind{client: client, inf: i.Informer(), lister: i.Lister()}
}

func (k *rsKind) GVK() schema.GroupVersionKind {
	return appsv1.SchemeGroupVersion.WithKind("ReplicaSet")
}
func (k *rsKind) HasTerminatingReplicas() bool        { return true }
func (k *rsKind) Informer() cache.SharedIndexInformer { return k.inf }

func (k *rsKind) Wrap(obj interface{}) (owner, bool) {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return nil, false
	}
	return rsOwner{rs}, true
}

func (k *rsKind) Get(namespace, name string) (owner, error) {
	rs, err := k.lister.ReplicaSets(namespace).Get(name)
	if err != nil {
		return nil, err
	}
	return rsOwner{rs}, nil
}

func (k *rsKind) List(namespace string) ([]owner, error) {
	l, err := k.lister.ReplicaSets(namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	out := make([]owner, len(l))
	for i, rs := range l {
		out[i] = rsOwner{rs}
	}
	return out, nil
}

func (k *rsKind) GetFresh(ctx context.Context, namespace, name string) (owner, error) {
	rs, err := k.client.AppsV1().ReplicaSets(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return rsOwner{rs}, nil
}

func (k *rsKind) UpdateStatus(ctx context.Context, o owner, st replicaStatus) (owner, error) {
	rs := o.(rsOwner).DeepCopy()
	rs.Status = appsv1.ReplicaSetStatus{
		Replicas:             st.Replicas,
		FullyLabeledReplicas: st.FullyLabeledReplicas,
		ReadyReplicas:        st.ReadyReplicas,
		AvailableReplicas:    st.AvailableReplicas,
		TerminatingReplicas:  st.TerminatingReplicas,
		ObservedGeneration:   st.ObservedGeneration,
	}
	for _, c := range st.Conditions {
		rs.Status.Conditions = append(rs.Status.Conditions, appsv1.ReplicaSetCondition{
			Type: appsv1.ReplicaSetConditionType(c.Type), Status: c.Status, LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message,
		})
	}
	got, err := k.client.AppsV1().ReplicaSets(rs.Namespace).UpdateStatus(ctx, rs, metav1.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	return rsOwner{got}, nil
}

// --- core/v1 ReplicationController ---

type rcOwner struct{ *v1.ReplicationController }

func (o rcOwner) Object() runtime.Object { return o.ReplicationController }

func (o rcOwner) Replicas() int32 {
	if o.Spec.Replicas == nil {
		return 1
	}
	return *o.Spec.Replicas
}

func (o rcOwner) MinReadySeconds() int32 { return o.Spec.MinReadySeconds }

func (o rcOwner) Selector() (labels.Selector, error) {
	if len(o.Spec.Selector) == 0 {
		return labels.Nothing(), nil
	}
	return labels.SelectorFromSet(o.Spec.Selector), nil
}

func (o rcOwner) Template() *v1.PodTemplateSpec { return o.Spec.Template }

func (o rcOwner) Status() replicaStatus {
	s := o.ReplicationController.Status
	out := replicaStatus{
		Replicas:             s.Replicas,
		FullyLabeledReplicas: s.FullyLabeledReplicas,
		ReadyReplicas:        s.ReadyReplicas,
		AvailableReplicas:    s.AvailableReplicas,
		ObservedGeneration:   s.ObservedGeneration,
	}
	for _, c := range s.Conditions {
		out.Conditions = append(out.Conditions, condition{string(c.Type), c.Status, c.LastTransitionTime, c.Reason, c.Message})
	}
	return out
}

type rcKind struct {
	client kubernetes.Interface
	inf    cache.SharedIndexInformer
	lister corelisters.ReplicationControllerLister
}

func newRCKind(client kubernetes.Interface, f informers.SharedInformerFactory) *rcKind {
	i := f.Core().V1().ReplicationControllers()
	return &rcKind{client: client, inf: i.Informer(), lister: i.Lister()}
}

func (k *rcKind) GVK() schema.GroupVersionKind {
	return v1.SchemeGroupVersion.WithKind("ReplicationController")
}
func (k *rcKind) HasTerminatingReplicas() bool        { return false }
func (k *rcKind) Informer() cache.SharedIndexInformer { return k.inf }

func (k *rcKind) Wrap(obj interface{}) (owner, bool) {
	rc, ok := obj.(*v1.ReplicationController)
	if !ok {
		return nil, false
	}
	return rcOwner{rc}, true
}

func (k *rcKind) Get(namespace, name string) (owner, error) {
	rc, err := k.lister.ReplicationControllers(namespace).Get(name)
	if err != nil {
		return nil, err
	}
	return rcOwner{rc}, nil
}

func (k *rcKind) List(namespace string) ([]owner, error) {
	l, err := k.lister.ReplicationControllers(namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	out := make([]owner, len(l))
	for i, rc := range l {
		out[i] = rcOwner{rc}
	}
	return out, nil
}

func (k *rcKind) GetFresh(ctx context.Context, namespace, name string) (owner, error) {
	rc, err := k.client.CoreV1().ReplicationControllers(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return rcOwner{rc}, nil
}

func (k *rcKind) UpdateStatus(ctx context.Context, o owner, st replicaStatus) (owner, error) {
	rc := o.(rcOwner).DeepCopy()
	rc.Status = v1.ReplicationControllerStatus{
		Replicas:             st.Replicas,
		FullyLabeledReplicas: st.FullyLabeledReplicas,
		ReadyReplicas:        st.ReadyReplicas,
		AvailableReplicas:    st.AvailableReplicas,
		ObservedGeneration:   st.ObservedGeneration,
	}
	for _, c := range st.Conditions {
		rc.Status.Conditions = append(rc.Status.Conditions, v1.ReplicationControllerCondition{
			Type: v1.ReplicationControllerConditionType(c.Type), Status: c.Status, LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message,
		})
	}
	got, err := k.client.CoreV1().ReplicationControllers(rc.Namespace).UpdateStatus(ctx, rc, metav1.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	return rcOwner{got}, nil
}
