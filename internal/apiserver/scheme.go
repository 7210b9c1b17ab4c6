package apiserver

import (
	"fmt"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	"github.com/portal-net/portal/internal/api/core"
	portalv1 "github.com/portal-net/portal/internal/api/portal/v1"
	"github.com/portal-net/portal/internal/registry"
	"github.com/portal-net/portal/internal/registry/pod"
	"github.com/portal-net/portal/internal/registry/proxy"
)

// Scheme holds every type portal serves. There is no separate internal
// (hub) version: each v1 struct is also registered as the group's internal
// version, so "conversion" is the identity and the apiserver machinery that
// insists on an internal version is satisfied.
var (
	Scheme         = runtime.NewScheme()
	Codecs         = serializer.NewCodecFactory(Scheme)
	ParameterCodec = runtime.NewParameterCodec(Scheme)
)

// servedGroupVersions lists the API group versions portal serves, with the
// AddToScheme of their k8s.io/api package.
var servedGroupVersions = []struct {
	gv  schema.GroupVersion
	add func(*runtime.Scheme) error
}{
	{corev1.SchemeGroupVersion, corev1.AddToScheme},
	{appsv1.SchemeGroupVersion, appsv1.AddToScheme},
	{discoveryv1.SchemeGroupVersion, discoveryv1.AddToScheme},
	{coordinationv1.SchemeGroupVersion, coordinationv1.AddToScheme},
	{networkingv1.SchemeGroupVersion, networkingv1.AddToScheme},
	{autoscalingv1.SchemeGroupVersion, autoscalingv1.AddToScheme},
	{policyv1.SchemeGroupVersion, policyv1.AddToScheme},
	{portalv1.SchemeGroupVersion, portalv1.AddToScheme},
}

// replacedTypes are kinds portal serves with its own Go type (see package core).
var replacedTypes = map[schema.GroupVersionKind]runtime.Object{
	corev1.SchemeGroupVersion.WithKind("Service"):     &core.Service{},
	corev1.SchemeGroupVersion.WithKind("ServiceList"): &core.ServiceList{},
}

// openAPIScheme holds only the external types: the OpenAPI definition namer
// must not see the internal registrations, or every kind would advertise an
// "__internal" group version.
var openAPIScheme = runtime.NewScheme()

func init() {
	if err := addToScheme(Scheme, true); err != nil {
		panic(err)
	}
	if err := addToScheme(openAPIScheme, false); err != nil {
		panic(err)
	}
	addDefaulting(Scheme)
}

func addToScheme(s *runtime.Scheme, withInternal bool) error {
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	if withInternal {
		if err := metainternalversion.AddToScheme(s); err != nil {
			return err
		}
	}
	for _, g := range servedGroupVersions {
		// Learn the group's kinds from a scratch scheme, then register each
		// (or its replacement) under both v1 and the internal version.
		tmp := runtime.NewScheme()
		if err := g.add(tmp); err != nil {
			return fmt.Errorf("registering %s: %w", g.gv, err)
		}
		metav1.AddToGroupVersion(s, g.gv)
		internal := schema.GroupVersion{Group: g.gv.Group, Version: runtime.APIVersionInternal}
		for kind, typ := range tmp.KnownTypes(g.gv) {
			if _, isOption := metaOptionKinds[kind]; isOption {
				continue
			}
			gvk := g.gv.WithKind(kind)
			obj, replaced := replacedTypes[gvk]
			if !replaced {
				obj = reflect.New(typ).Interface().(runtime.Object)
			}
			s.AddKnownTypeWithName(gvk, obj)
			if withInternal {
				s.AddKnownTypeWithName(internal.WithKind(kind), obj.DeepCopyObject())
			}
		}
	}
	if !withInternal {
		return nil
	}
	if err := pod.AddConversions(s); err != nil {
		return err
	}
	if err := proxy.AddConversions(s); err != nil {
		return err
	}
	return registry.AddFieldLabelConversions(s)
}

// metaOptionKinds are registered by metav1.AddToGroupVersion already.
var metaOptionKinds = map[string]struct{}{
	"ListOptions": {}, "GetOptions": {}, "DeleteOptions": {}, "CreateOptions": {},
	"UpdateOptions": {}, "PatchOptions": {}, "WatchEvent": {}, "Status": {},
	"APIVersions": {}, "APIGroupList": {}, "APIGroup": {}, "APIResourceList": {},
}
