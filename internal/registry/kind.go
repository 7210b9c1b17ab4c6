package registry

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/names"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

// Kind describes one served resource.
type Kind struct {
	GVK        schema.GroupVersionKind
	Resource   string // plural, lower case
	Singular   string
	Namespaced bool
	New        func() runtime.Object
	NewList    func() runtime.Object
	ShortNames []string
	Categories []string

	// HasStatus: the object has spec and status; the main endpoint ignores
	// status changes, and a status subresource is served.
	HasStatus bool
	// NoGeneration turns off metadata.generation tracking of spec changes
	// for a kind that has status.
	NoGeneration        bool
	AllowCreateOnUpdate bool

	PrepareForCreate       func(ctx context.Context, obj runtime.Object)
	PrepareForUpdate       func(ctx context.Context, obj, old runtime.Object)
	PrepareForStatusUpdate func(ctx context.Context, obj, old runtime.Object)
	Validate               func(obj runtime.Object) field.ErrorList
	ValidateUpdate         func(obj, old runtime.Object) field.ErrorList
	ValidateStatusUpdate   func(obj, old runtime.Object) field.ErrorList
	Warnings               func(obj, old runtime.Object) []string
	GracefulDelete         func(obj runtime.Object, options *metav1.DeleteOptions) bool
	// Admit, when set, runs on create after validation and before the
	// object is stored, as kube-apiserver's validating admission does
	// (resource quota); an error rejects the create. dryRun requests must
	// not leave side effects.
	Admit func(ctx context.Context, obj runtime.Object, dryRun bool) error
	// TTL, when set, expires objects (events) after it.
	TTLSeconds uint64

	Table rest.TableConvertor
	// Triggers index watches by a field (pods by spec.nodeName).
	Triggers storage.IndexerFuncs
}

func (k *Kind) tracksGeneration() bool { return k.HasStatus && !k.NoGeneration }

// GroupResource returns the kind's group and plural resource name.
func (k *Kind) GroupResource() schema.GroupResource {
	return schema.GroupResource{Group: k.GVK.Group, Resource: k.Resource}
}

// Storage is what NewStorage builds for a Kind: the main endpoint and, for
// kinds with status, the status subresource.
type Storage struct {
	Store  *Store
	Status *StatusStore
}

// Store is the generic registry store with short names and categories.
type Store struct {
	*genericregistry.Store
	kind *Kind
}

// Create runs the kind's admission, if any, after the generic store's
// validation and before the object is stored.
func (s *Store) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, options *metav1.CreateOptions) (runtime.Object, error) {
	if admit := s.kind.Admit; admit != nil {
		dryRun := options != nil && len(options.DryRun) > 0
		next := createValidation
		createValidation = func(ctx context.Context, obj runtime.Object) error {
			if next != nil {
				if err := next(ctx, obj); err != nil {
					return err
				}
			}
			return admit(ctx, obj, dryRun)
		}
	}
	return s.Store.Create(ctx, obj, createValidation, options)
}

// Kind returns the kind the store serves; set hooks such as Admit on it
// before the API is installed.
func (s *Store) Kind() *Kind { return s.kind }

// ShortNames implements rest.ShortNamesProvider.
func (s *Store) ShortNames() []string { return s.kind.ShortNames }

// Categories implements rest.CategoriesProvider.
func (s *Store) Categories() []string { return s.kind.Categories }

// SingularName implements rest.SingularNameProvider.
func (s *Store) SingularName() string { return s.kind.Singular }

// StatusStore serves the status subresource.
type StatusStore struct {
	store *genericregistry.Store
}

// New implements rest.Storage.
func (s *StatusStore) New() runtime.Object { return s.store.New() }

// Destroy implements rest.Storage; the main store owns the storage.
func (s *StatusStore) Destroy() {}

// Get returns the object, for the status subresource.
func (s *StatusStore) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	return s.store.Get(ctx, name, options)
}

// Update updates only the status of the object.
func (s *StatusStore) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, forceAllowCreate bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	// Status updates never create the object.
	return s.store.Update(ctx, name, objInfo, createValidation, updateValidation, false, options)
}

// GetResetFields implements rest.ResetFieldsStrategy.
func (s *StatusStore) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return s.store.GetResetFields()
}

// ConvertToTable implements rest.TableConvertor.
func (s *StatusStore) ConvertToTable(ctx context.Context, object runtime.Object, tableOptions runtime.Object) (*metav1.Table, error) {
	return s.store.ConvertToTable(ctx, object, tableOptions)
}

// NewStorage builds the storage of a Kind.
func NewStorage(k *Kind, typer runtime.ObjectTyper, optsGetter generic.RESTOptionsGetter) (*Storage, error) {
	st := strategy{ObjectTyper: typer, NameGenerator: names.SimpleNameGenerator, kind: k}
	table := k.Table
	if table == nil {
		table = rest.NewDefaultTableConvertor(k.GroupResource())
	}
	gs := &genericregistry.Store{
		NewFunc:                   k.New,
		NewListFunc:               k.NewList,
		DefaultQualifiedResource:  k.GroupResource(),
		SingularQualifiedResource: schema.GroupResource{Group: k.GVK.Group, Resource: k.Singular},
		CreateStrategy:            st,
		UpdateStrategy:            st,
		DeleteStrategy:            st,
		ResetFieldsStrategy:       st,
		ReturnDeletedObject:       true,
		TableConvertor:            table,
	}
	if k.TTLSeconds > 0 {
		ttl := k.TTLSeconds
		gs.TTLFunc = func(runtime.Object, uint64, bool) (uint64, error) { return ttl, nil }
	}
	opts := &generic.StoreOptions{
		RESTOptions: optsGetter,
		AttrFunc:    attrs(k.GVK, k.Namespaced),
		TriggerFunc: k.Triggers,
	}
	if err := gs.CompleteWithOptions(opts); err != nil {
		return nil, fmt.Errorf("storage for %s: %w", k.GroupResource(), err)
	}
	out := &Storage{Store: &Store{Store: gs, kind: k}}
	if k.HasStatus {
		ss := *gs
		sst := statusStrategy{strategy: st}
		ss.CreateStrategy = nil
		ss.DeleteStrategy = nil
		ss.UpdateStrategy = sst
		ss.ResetFieldsStrategy = sst
		out.Status = &StatusStore{store: &ss}
	}
	return out, nil
}
