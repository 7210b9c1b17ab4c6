package registry

import (
	"context"
	"reflect"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/storage/names"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

// strategy implements the create/update/delete strategies of the generic
// registry for the main resource of a Kind.
type strategy struct {
	runtime.ObjectTyper
	names.NameGenerator
	kind *Kind
}

func (s strategy) NamespaceScoped() bool { return s.kind.Namespaced }

func (s strategy) PrepareForCreate(ctx context.Context, obj runtime.Object) {
	if s.kind.HasStatus {
		// Status is written by controllers through the status subresource.
		setField(obj, "Status", reflect.Zero(fieldType(obj, "Status")))
	}
	if s.kind.tracksGeneration() {
		mustAccessor(obj).SetGeneration(1)
	}
	if s.kind.PrepareForCreate != nil {
		s.kind.PrepareForCreate(ctx, obj)
	}
}

func (s strategy) PrepareForUpdate(ctx context.Context, obj, old runtime.Object) {
	if s.kind.HasStatus {
		setField(obj, "Status", getField(old, "Status"))
	}
	if s.kind.tracksGeneration() {
		m, o := mustAccessor(obj), mustAccessor(old)
		m.SetGeneration(o.GetGeneration())
		if !equality.Semantic.DeepEqual(getField(obj, "Spec").Interface(), getField(old, "Spec").Interface()) {
			m.SetGeneration(o.GetGeneration() + 1)
		}
	}
	if s.kind.PrepareForUpdate != nil {
		s.kind.PrepareForUpdate(ctx, obj, old)
	}
}

func (s strategy) Validate(ctx context.Context, obj runtime.Object) field.ErrorList {
	if s.kind.Validate == nil {
		return nil
	}
	return s.kind.Validate(obj)
}

func (s strategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	if s.kind.ValidateUpdate != nil {
		return s.kind.ValidateUpdate(obj, old)
	}
	return s.Validate(ctx, obj)
}

func (s strategy) WarningsOnCreate(ctx context.Context, obj runtime.Object) []string {
	if s.kind.Warnings == nil {
		return nil
	}
	return s.kind.Warnings(obj, nil)
}

func (s strategy) WarningsOnUpdate(ctx context.Context, obj, old runtime.Object) []string {
	if s.kind.Warnings == nil {
		return nil
	}
	return s.kind.Warnings(obj, old)
}

func (s strategy) Canonicalize(obj runtime.Object) {}

func (s strategy) AllowCreateOnUpdate(ctx context.Context) bool { return s.kind.AllowCreateOnUpdate }

func (s strategy) AllowUnconditionalUpdate(ctx context.Context) bool { return true }

func (s strategy) CheckGracefulDelete(ctx context.Context, obj runtime.Object, options *metav1.DeleteOptions) bool {
	if s.kind.GracefulDelete == nil {
		return false
	}
	return s.kind.GracefulDelete(obj, options)
}

// GetResetFields tells server-side apply which fields this endpoint never
// writes, so their managers are not taken over.
func (s strategy) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	if !s.kind.HasStatus {
		return nil
	}
	return map[fieldpath.APIVersion]*fieldpath.Set{
		fieldpath.APIVersion(s.kind.GVK.GroupVersion().String()): fieldpath.NewSet(fieldpath.MakePathOrDie("status")),
	}
}

// statusStrategy serves the status subresource: only status changes.
type statusStrategy struct {
	strategy
}

func (s statusStrategy) PrepareForUpdate(ctx context.Context, obj, old runtime.Object) {
	// Keep everything but status (and the metadata a status writer may not
	// change) from the stored object.
	setField(obj, "Spec", getField(old, "Spec"))
	m, o := mustAccessor(obj), mustAccessor(old)
	m.SetGeneration(o.GetGeneration())
	m.SetDeletionTimestamp(o.GetDeletionTimestamp())
	m.SetOwnerReferences(o.GetOwnerReferences())
	if s.kind.PrepareForStatusUpdate != nil {
		s.kind.PrepareForStatusUpdate(ctx, obj, old)
	}
}

func (s statusStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	if s.kind.ValidateStatusUpdate != nil {
		return s.kind.ValidateStatusUpdate(obj, old)
	}
	return nil
}

func (s statusStrategy) WarningsOnUpdate(ctx context.Context, obj, old runtime.Object) []string {
	return nil
}

func (s statusStrategy) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return map[fieldpath.APIVersion]*fieldpath.Set{
		fieldpath.APIVersion(s.kind.GVK.GroupVersion().String()): fieldpath.NewSet(fieldpath.MakePathOrDie("spec")),
	}
}

func mustAccessor(obj runtime.Object) metav1.Object {
	m, err := meta.Accessor(obj)
	if err != nil {
		panic(err)
	}
	return m
}

func getField(obj runtime.Object, name string) reflect.Value {
	return reflect.ValueOf(obj).Elem().FieldByName(name)
}

func setField(obj runtime.Object, name string, v reflect.Value) {
	f := reflect.ValueOf(obj).Elem().FieldByName(name)
	if f.IsValid() {
		f.Set(v)
	}
}

func fieldType(obj runtime.Object, name string) reflect.Type {
	f, ok := reflect.TypeOf(obj).Elem().FieldByName(name)
	if !ok {
		panic("no field " + name)
	}
	return f.Type
}
