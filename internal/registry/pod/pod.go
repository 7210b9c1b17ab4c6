package pod

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage"

	"github.com/portal-net/portal/internal/api/defaults"
	"github.com/portal-net/portal/internal/api/validation"
	"github.com/portal-net/portal/internal/registry"
)

// Kind describes the Pod resource.
func Kind(table rest.TableConvertor) *registry.Kind {
	return &registry.Kind{
		GVK:        corev1.SchemeGroupVersion.WithKind("Pod"),
		Resource:   "pods",
		Singular:   "pod",
		Namespaced: true,
		New:        func() runtime.Object { return &corev1.Pod{} },
		NewList:    func() runtime.Object { return &corev1.PodList{} },
		ShortNames: []string{"po"},
		Categories: []string{"all"},
		HasStatus:  true,
		Table:      table,
		PrepareForCreate: func(ctx context.Context, obj runtime.Object) {
			p := obj.(*corev1.Pod)
			// What kube-apiserver's default admission plugins add: the
			// 300 s not-ready/unreachable tolerations that bound taint-based
			// eviction, priority 0, and the namespace's "default"
			// ServiceAccount (kept by the serviceaccount controller).
			defaults.DefaultTolerations(p)
			defaults.DefaultPriority(p)
			defaults.DefaultServiceAccount(p)
			p.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: qosClass(p)}
		},
		Validate: func(obj runtime.Object) field.ErrorList { return validation.ValidatePod(obj.(*corev1.Pod)) },
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			return validation.ValidatePodUpdate(obj.(*corev1.Pod), old.(*corev1.Pod))
		},
		GracefulDelete: gracefulDelete,
		Triggers:       storage.IndexerFuncs{"spec.nodeName": nodeNameTrigger},
	}
}

func nodeNameTrigger(obj runtime.Object) string { return obj.(*corev1.Pod).Spec.NodeName }

// gracefulDelete mirrors Kubernetes: a pod that never reached a node, or
// already finished, goes at once; others get their grace period so the
// node agent can stop them and delete them for good.
func gracefulDelete(obj runtime.Object, options *metav1.DeleteOptions) bool {
	p := obj.(*corev1.Pod)
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if p.Spec.TerminationGracePeriodSeconds != nil {
		grace = *p.Spec.TerminationGracePeriodSeconds
	}
	if options.GracePeriodSeconds != nil {
		grace = *options.GracePeriodSeconds
	}
	if p.Spec.NodeName == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		grace = 0
	}
	if grace < 0 {
		grace = 1
	}
	options.GracePeriodSeconds = &grace
	return true
}

func qosClass(p *corev1.Pod) corev1.PodQOSClass {
	requests, limits, all := 0, 0, 0
	for _, c := range p.Spec.Containers {
		all++
		if len(c.Resources.Requests) > 0 {
			requests++
		}
		if c.Resources.Limits.Cpu() != nil && !c.Resources.Limits.Cpu().IsZero() && !c.Resources.Limits.Memory().IsZero() {
			if c.Resources.Requests == nil || (c.Resources.Requests.Cpu().Equal(*c.Resources.Limits.Cpu()) && c.Resources.Requests.Memory().Equal(*c.Resources.Limits.Memory())) {
				limits++
			}
		}
	}
	switch {
	case all > 0 && limits == all:
		return corev1.PodQOSGuaranteed
	case requests > 0 || limits > 0:
		return corev1.PodQOSBurstable
	}
	for _, c := range p.Spec.Containers {
		if len(c.Resources.Limits) > 0 {
			return corev1.PodQOSBurstable
		}
	}
	return corev1.PodQOSBestEffort
}

// NewStorage returns pods and their subresources keyed by path; conn
// reaches the node agents for log, exec and attach.
func NewStorage(table rest.TableConvertor, typer runtime.ObjectTyper, optsGetter generic.RESTOptionsGetter, conn NodeConnection) (map[string]rest.Storage, error) {
	st, err := registry.NewStorage(Kind(table), typer, optsGetter)
	if err != nil {
		return nil, err
	}
	return map[string]rest.Storage{
		"pods":         st.Store,
		"pods/status":  st.Status,
		"pods/binding": &Binding{store: st.Store},
		"pods/log":     &Log{pods: st.Store, conn: conn},
		"pods/exec":    &Exec{pods: st.Store, conn: conn},
		"pods/attach":  &Attach{pods: st.Store, conn: conn},
	}, nil
}

// Binding serves pods/binding: it assigns a pending pod to a node once.
type Binding struct {
	store *registry.Store
}

// New implements rest.Storage.
func (b *Binding) New() runtime.Object { return &corev1.Binding{} }

// Destroy implements rest.Storage.
func (b *Binding) Destroy() {}

// NamespaceScoped implements rest.Scoper.
func (b *Binding) NamespaceScoped() bool { return true }

// Create binds the pod named by the Binding to its target node.
func (b *Binding) Create(ctx context.Context, name string, obj runtime.Object, createValidation rest.ValidateObjectFunc, options *metav1.CreateOptions) (runtime.Object, error) {
	binding, ok := obj.(*corev1.Binding)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not a Binding: %T", obj))
	}
	if binding.Name != name && name != "" {
		return nil, apierrors.NewBadRequest("name in URL does not match name in Binding object")
	}
	var errs field.ErrorList
	if binding.Target.Kind != "" && binding.Target.Kind != "Node" {
		errs = append(errs, field.NotSupported(field.NewPath("target", "kind"), binding.Target.Kind, []string{"Node", "<empty>"}))
	}
	if binding.Target.Name == "" {
		errs = append(errs, field.Required(field.NewPath("target", "name"), ""))
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Binding").GroupKind(), binding.Name, errs)
	}
	if createValidation != nil {
		if err := createValidation(ctx, binding); err != nil {
			return nil, err
		}
	}
	if len(options.DryRun) > 0 {
		return &metav1.Status{Status: metav1.StatusSuccess, Code: 201}, nil
	}
	key, err := b.store.KeyFunc(ctx, binding.Name)
	if err != nil {
		return nil, err
	}
	err = b.store.Storage.GuaranteedUpdate(ctx, key, &corev1.Pod{}, false, nil, storage.SimpleUpdate(func(existing runtime.Object) (runtime.Object, error) {
		pod := existing.(*corev1.Pod)
		if pod.DeletionTimestamp != nil {
			return nil, apierrors.NewConflict(corev1.Resource("pods/binding"), binding.Name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", pod.Name))
		}
		if binding.UID != "" && binding.UID != pod.UID {
			return nil, apierrors.NewConflict(corev1.Resource("pods/binding"), binding.Name, fmt.Errorf("UID in binding does not match the pod"))
		}
		if pod.Spec.NodeName != "" {
			return nil, apierrors.NewConflict(corev1.Resource("pods/binding"), binding.Name, fmt.Errorf("pod %v is already assigned to node %q", pod.Name, pod.Spec.NodeName))
		}
		pod.Spec.NodeName = binding.Target.Name
		for k, v := range binding.Annotations {
			if pod.Annotations == nil {
				pod.Annotations = map[string]string{}
			}
			pod.Annotations[k] = v
		}
		setCondition(&pod.Status, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()})
		return pod, nil
	}), false, nil)
	if err != nil {
		return nil, err
	}
	return &metav1.Status{Status: metav1.StatusSuccess, Code: 201}, nil
}

func setCondition(s *corev1.PodStatus, c corev1.PodCondition) {
	for i := range s.Conditions {
		if s.Conditions[i].Type == c.Type {
			s.Conditions[i] = c
			return
		}
	}
	s.Conditions = append(s.Conditions, c)
}
