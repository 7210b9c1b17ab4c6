package service

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage/names"

	"github.com/portal-net/portal/internal/allocator"
	"github.com/portal-net/portal/internal/api/core"
	"github.com/portal-net/portal/internal/api/validation"
	"github.com/portal-net/portal/internal/registry"
)

var kindService = corev1.SchemeGroupVersion.WithKind("Service").GroupKind()

// Options configure the Service registry.
type Options struct {
	Validation validation.ServiceOptions
	Allocators *Allocators
	Table      rest.TableConvertor
}

// Kind describes the Service resource.
func Kind(o Options) *registry.Kind {
	return &registry.Kind{
		GVK:        corev1.SchemeGroupVersion.WithKind("Service"),
		Resource:   "services",
		Singular:   "service",
		Namespaced: true,
		New:        func() runtime.Object { return &core.Service{} },
		NewList:    func() runtime.Object { return &core.ServiceList{} },
		ShortNames: []string{"svc"},
		Categories: []string{"all"},
		HasStatus:  true,
		// Services carry no generation in Kubernetes.
		NoGeneration: true,
		Validate: func(obj runtime.Object) field.ErrorList {
			return validate(obj.(*core.Service), o.Validation)
		},
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			return validateUpdate(obj.(*core.Service), old.(*core.Service), o.Validation)
		},
		ValidateStatusUpdate: func(obj, old runtime.Object) field.ErrorList {
			return validation.ValidateServiceStatusUpdate(obj.(*core.Service).V1(), old.(*core.Service).V1())
		},
		Warnings: func(obj, old runtime.Object) []string {
			svc := obj.(*core.Service)
			if len(svc.Spec.TopologyKeys) == 0 {
				return nil
			}
			return validation.TopologyKeysWarning(svc.Spec.TopologyKeys)
		},
		Table: o.Table,
	}
}

func validate(svc *core.Service, opts validation.ServiceOptions) field.ErrorList {
	errs := validation.ValidateService(svc.V1(), opts)
	return append(errs, validation.ValidateTopologyKeys(svc.Spec.TopologyKeys, field.NewPath("spec", "topologyKeys"))...)
}

func validateUpdate(svc, old *core.Service, opts validation.ServiceOptions) field.ErrorList {
	errs := validation.ValidateServiceUpdate(svc.V1(), old.V1(), opts)
	return append(errs, validation.ValidateTopologyKeys(svc.Spec.TopologyKeys, field.NewPath("spec", "topologyKeys"))...)
}

// NewStorage builds the Service storage with allocation hooks.
func NewStorage(o Options, typer runtime.ObjectTyper, optsGetter generic.RESTOptionsGetter) (*registry.Storage, error) {
	st, err := registry.NewStorage(Kind(o), typer, optsGetter)
	if err != nil {
		return nil, err
	}
	h := hooks{alloc: o.Allocators, opts: o.Validation}
	gs := st.Store.Store
	gs.BeginCreate = h.beginCreate
	gs.BeginUpdate = h.beginUpdate
	gs.AfterDelete = h.afterDelete
	return st, nil
}

type hooks struct {
	alloc *Allocators
	opts  validation.ServiceOptions
}

func ownerOf(svc *core.Service) allocator.Owner {
	return allocator.Owner{Namespace: svc.Namespace, Name: svc.Name}
}

func (h hooks) beginCreate(ctx context.Context, obj runtime.Object, options *metav1.CreateOptions) (genericregistry.FinishFunc, error) {
	svc := obj.(*core.Service)
	if svc.Name == "" && svc.GenerateName != "" {
		// Name it now so allocations are recorded under the final name.
		svc.Name = names.SimpleNameGenerator.GenerateName(svc.GenerateName)
	}
	// Validate before allocating: an invalid service must not hold
	// addresses, and its 422 should list every problem at once.
	if errs := validate(svc, h.opts); len(errs) > 0 {
		return nil, apierrors.NewInvalid(kindService, svc.Name, errs)
	}
	t, errs := h.alloc.allocate(ctx, ownerOf(svc), &svc.Spec.ServiceSpec, nil, len(options.DryRun) > 0)
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(kindService, svc.Name, errs)
	}
	return func(ctx context.Context, success bool) {
		if !success {
			t.revert(context.WithoutCancel(ctx))
		}
	}, nil
}

func (h hooks) beginUpdate(ctx context.Context, obj, oldObj runtime.Object, options *metav1.UpdateOptions) (genericregistry.FinishFunc, error) {
	svc, old := obj.(*core.Service), oldObj.(*core.Service)
	// What rest.BeforeUpdate would fill in later; validation here runs
	// earlier and must see the same object.
	if svc.UID == "" {
		svc.UID = old.UID
	}
	svc.CreationTimestamp = old.CreationTimestamp
	normalizeUpdate(svc, old)
	keepAllocated(svc, old)
	if errs := validateUpdate(svc, old, h.opts); len(errs) > 0 {
		return nil, apierrors.NewInvalid(kindService, svc.Name, errs)
	}
	oldHeld := held(&old.Spec.ServiceSpec)
	dryRun := len(options.DryRun) > 0
	t, errs := h.alloc.allocate(ctx, ownerOf(svc), &svc.Spec.ServiceSpec, &oldHeld, dryRun)
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(kindService, svc.Name, errs)
	}
	return func(ctx context.Context, success bool) {
		ctx = context.WithoutCancel(ctx)
		if !success {
			t.revert(ctx)
			return
		}
		if !dryRun {
			h.alloc.releaseDropped(ctx, oldHeld, held(&svc.Spec.ServiceSpec))
		}
	}, nil
}

func (h hooks) afterDelete(obj runtime.Object, options *metav1.DeleteOptions) {
	if len(options.DryRun) > 0 {
		return
	}
	svc := obj.(*core.Service)
	h.alloc.release(context.Background(), held(&svc.Spec.ServiceSpec))
}
