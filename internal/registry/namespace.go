package registry

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
)

// Namespaces Kubernetes never lets anyone delete.
var undeletableNamespaces = map[string]bool{"default": true, "kube-system": true, "kube-public": true}

// NamespaceFinalizer is the spec finalizer the namespace controller removes
// once the namespace is empty.
const NamespaceFinalizer = corev1.FinalizerKubernetes

func namespaceKind(table rest.TableConvertor, validate func(*corev1.Namespace) field.ErrorList) *Kind {
	return &Kind{
		GVK:          corev1.SchemeGroupVersion.WithKind("Namespace"),
		Resource:     "namespaces",
		Singular:     "namespace",
		New:          func() runtime.Object { return &corev1.Namespace{} },
		NewList:      func() runtime.Object { return &corev1.NamespaceList{} },
		ShortNames:   []string{"ns"},
		HasStatus:    true,
		NoGeneration: true,
		Table:        table,
		Validate: func(obj runtime.Object) field.ErrorList {
			if validate == nil {
				return nil
			}
			return validate(obj.(*corev1.Namespace))
		},
		PrepareForCreate: func(ctx context.Context, obj runtime.Object) {
			ns := obj.(*corev1.Namespace)
			ns.Spec.Finalizers = []corev1.FinalizerName{NamespaceFinalizer}
			ns.Status.Phase = corev1.NamespaceActive
			setNameLabel(ns)
		},
		PrepareForUpdate: func(ctx context.Context, obj, old runtime.Object) {
			ns := obj.(*corev1.Namespace)
			// spec.finalizers change only through /finalize.
			ns.Spec.Finalizers = old.(*corev1.Namespace).Spec.Finalizers
			setNameLabel(ns)
		},
	}
}

func setNameLabel(ns *corev1.Namespace) {
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	ns.Labels[corev1.LabelMetadataName] = ns.Name
}

// NamespaceStore adds Kubernetes' two-phase namespace deletion to the
// generic store: a namespace with spec finalizers becomes Terminating and
// is removed only after the namespace controller emptied and finalized it.
type NamespaceStore struct {
	*Store
}

// Delete marks the namespace Terminating, or removes it once finalized.
func (s *NamespaceStore) Delete(ctx context.Context, name string, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions) (runtime.Object, bool, error) {
	if undeletableNamespaces[name] {
		return nil, false, apierrors.NewForbidden(s.DefaultQualifiedResource, name, fmt.Errorf("this namespace may not be deleted"))
	}
	obj, err := s.Get(ctx, name, &metav1.GetOptions{})
	if err != nil {
		return nil, false, err
	}
	ns := obj.(*corev1.Namespace)
	if options == nil {
		options = metav1.NewDeleteOptions(0)
	}
	if options.Preconditions != nil && options.Preconditions.UID != nil && *options.Preconditions.UID != ns.UID {
		return nil, false, apierrors.NewConflict(s.DefaultQualifiedResource, name, fmt.Errorf("precondition failed: UID in precondition: %v, UID in object meta: %v", *options.Preconditions.UID, ns.UID))
	}
	if len(ns.Spec.Finalizers) == 0 && len(ns.Finalizers) == 0 {
		return s.Store.Delete(ctx, name, deleteValidation, options)
	}
	if ns.DeletionTimestamp != nil {
		return ns, false, nil
	}
	key, err := s.KeyFunc(ctx, name)
	if err != nil {
		return nil, false, err
	}
	out := &corev1.Namespace{}
	err = s.Storage.GuaranteedUpdate(ctx, key, out, false, nil, storage.SimpleUpdate(func(existing runtime.Object) (runtime.Object, error) {
		cur := existing.(*corev1.Namespace)
		if deleteValidation != nil {
			if err := deleteValidation(ctx, cur); err != nil {
				return nil, err
			}
		}
		if cur.DeletionTimestamp == nil {
			now := metav1.Now()
			cur.DeletionTimestamp = &now
			zero := int64(0)
			cur.DeletionGracePeriodSeconds = &zero
		}
		cur.Status.Phase = corev1.NamespaceTerminating
		return cur, nil
	}), false, nil)
	if err != nil {
		return nil, false, err
	}
	return out, false, nil
}

// NamespaceFinalize serves namespaces/finalize: only spec.finalizers
// change, and a terminating namespace whose finalizers are gone is removed.
type NamespaceFinalize struct {
	store *NamespaceStore
}

// New implements rest.Storage.
func (f *NamespaceFinalize) New() runtime.Object { return &corev1.Namespace{} }

// Destroy implements rest.Storage.
func (f *NamespaceFinalize) Destroy() {}

// Update replaces spec.finalizers.
func (f *NamespaceFinalize) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, forceAllowCreate bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	key, err := f.store.KeyFunc(ctx, name)
	if err != nil {
		return nil, false, err
	}
	out := &corev1.Namespace{}
	err = f.store.Storage.GuaranteedUpdate(ctx, key, out, false, nil, storage.SimpleUpdate(func(existing runtime.Object) (runtime.Object, error) {
		cur := existing.(*corev1.Namespace)
		in, err := objInfo.UpdatedObject(ctx, cur.DeepCopy())
		if err != nil {
			return nil, err
		}
		cur.Spec.Finalizers = in.(*corev1.Namespace).Spec.Finalizers
		return cur, nil
	}), false, nil)
	if err != nil {
		return nil, false, err
	}
	if out.DeletionTimestamp != nil && len(out.Spec.Finalizers) == 0 && len(out.Finalizers) == 0 {
		if _, _, err := f.store.Store.Store.Delete(ctx, name, rest.ValidateAllObjectFunc, &metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return nil, false, err
		}
	}
	return out, false, nil
}

// NewNamespaceStorage returns namespaces, namespaces/status and
// namespaces/finalize.
func NewNamespaceStorage(table rest.TableConvertor, validate func(*corev1.Namespace) field.ErrorList, typer runtime.ObjectTyper, optsGetter generic.RESTOptionsGetter) (map[string]rest.Storage, error) {
	k := namespaceKind(table, validate)
	st, err := NewStorage(k, typer, optsGetter)
	if err != nil {
		return nil, err
	}
	// The generic store removes an object on any update once it is being
	// deleted and has no metadata.finalizers; a Terminating namespace must
	// survive its status updates until its spec.finalizers are gone too, or
	// it would vanish while the namespace controller is still emptying it.
	keep := func(_ context.Context, _ string, obj, _ runtime.Object) bool {
		n, ok := obj.(*corev1.Namespace)
		return ok && len(n.Spec.Finalizers) == 0 && len(n.Finalizers) == 0
	}
	st.Store.ShouldDeleteDuringUpdate = keep
	st.Status.store.ShouldDeleteDuringUpdate = keep
	ns := &NamespaceStore{Store: st.Store}
	return map[string]rest.Storage{
		"namespaces":          ns,
		"namespaces/status":   st.Status,
		"namespaces/finalize": &NamespaceFinalize{store: ns},
	}, nil
}
