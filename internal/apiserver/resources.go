package apiserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"

	portalv1 "github.com/portal-net/portal/internal/api/portal/v1"
	"github.com/portal-net/portal/internal/api/validation"
	"github.com/portal-net/portal/internal/config"
	"github.com/portal-net/portal/internal/printers"
	"github.com/portal-net/portal/internal/registry"
	"github.com/portal-net/portal/internal/registry/pod"
	"github.com/portal-net/portal/internal/registry/proxy"
	"github.com/portal-net/portal/internal/registry/service"
)

// storageVersions are the versions objects are stored in etcd.
func storageVersions() []schema.GroupVersion {
	out := make([]schema.GroupVersion, 0, len(servedGroupVersions))
	for _, g := range servedGroupVersions {
		out = append(out, g.gv)
	}
	return out
}

func table(group, resource string) rest.TableConvertor {
	if t, ok := printers.For(schema.GroupResource{Group: group, Resource: resource}); ok {
		return t
	}
	return nil
}

// typed adapts a validation function on a concrete type.
func typed[T runtime.Object](fn func(T) field.ErrorList) func(runtime.Object) field.ErrorList {
	return func(obj runtime.Object) field.ErrorList { return fn(obj.(T)) }
}

func typedUpdate[T runtime.Object](fn func(T, T) field.ErrorList) func(runtime.Object, runtime.Object) field.ErrorList {
	return func(obj, old runtime.Object) field.ErrorList { return fn(obj.(T), old.(T)) }
}

func newFn[T any, PT interface {
	*T
	runtime.Object
}]() func() runtime.Object {
	return func() runtime.Object { return PT(new(T)) }
}

// simpleKinds are the resources that need nothing beyond a Kind.
func simpleKinds() []*registry.Kind {
	core := corev1.SchemeGroupVersion
	apps := appsv1.SchemeGroupVersion
	return []*registry.Kind{
		{GVK: core.WithKind("Endpoints"), Resource: "endpoints", Singular: "endpoints", Namespaced: true,
			New: newFn[corev1.Endpoints](), NewList: newFn[corev1.EndpointsList](), ShortNames: []string{"ep"},
			Validate: typed(validation.ValidateEndpoints), ValidateUpdate: typedUpdate(validation.ValidateEndpointsUpdate),
			Table: table("", "endpoints")},
		{GVK: core.WithKind("Node"), Resource: "nodes", Singular: "node",
			New: newFn[corev1.Node](), NewList: newFn[corev1.NodeList](), ShortNames: []string{"no"},
			HasStatus: true, NoGeneration: true,
			Validate: typed(validation.ValidateNode), Table: table("", "nodes")},
		{GVK: core.WithKind("Event"), Resource: "events", Singular: "event", Namespaced: true,
			New: newFn[corev1.Event](), NewList: newFn[corev1.EventList](), ShortNames: []string{"ev"},
			TTLSeconds: 3600, Table: table("", "events")},
		{GVK: core.WithKind("ConfigMap"), Resource: "configmaps", Singular: "configmap", Namespaced: true,
			New: newFn[corev1.ConfigMap](), NewList: newFn[corev1.ConfigMapList](), ShortNames: []string{"cm"},
			Validate: typed(validation.ValidateConfigMap), Table: table("", "configmaps")},
		{GVK: core.WithKind("PersistentVolumeClaim"), Resource: "persistentvolumeclaims", Singular: "persistentvolumeclaim", Namespaced: true,
			New: newFn[corev1.PersistentVolumeClaim](), NewList: newFn[corev1.PersistentVolumeClaimList](), ShortNames: []string{"pvc"},
			HasStatus: true, NoGeneration: true,
			PrepareForCreate: func(_ context.Context, obj runtime.Object) {
				validation.DefaultPersistentVolumeClaim(obj.(*corev1.PersistentVolumeClaim))
			},
			PrepareForUpdate: func(_ context.Context, obj, _ runtime.Object) {
				validation.DefaultPersistentVolumeClaim(obj.(*corev1.PersistentVolumeClaim))
			},
			PrepareForStatusUpdate: func(_ context.Context, obj, _ runtime.Object) {
				validation.DefaultPersistentVolumeClaim(obj.(*corev1.PersistentVolumeClaim))
			},
			Validate:       typed(validation.ValidatePersistentVolumeClaim),
			ValidateUpdate: typedUpdate(validation.ValidatePersistentVolumeClaimUpdate),
			Table:          table("", "persistentvolumeclaims")},
		{GVK: core.WithKind("PersistentVolume"), Resource: "persistentvolumes", Singular: "persistentvolume",
			New: newFn[corev1.PersistentVolume](), NewList: newFn[corev1.PersistentVolumeList](), ShortNames: []string{"pv"},
			HasStatus: true, NoGeneration: true,
			PrepareForCreate: func(_ context.Context, obj runtime.Object) {
				validation.PreparePersistentVolumeCreate(obj.(*corev1.PersistentVolume), metav1.Now())
			},
			PrepareForUpdate: func(_ context.Context, obj, _ runtime.Object) {
				validation.DefaultPersistentVolume(obj.(*corev1.PersistentVolume))
			},
			PrepareForStatusUpdate: func(_ context.Context, obj, old runtime.Object) {
				validation.PreparePersistentVolumeStatusUpdate(obj.(*corev1.PersistentVolume), old.(*corev1.PersistentVolume), metav1.Now())
			},
			Validate:       typed(validation.ValidatePersistentVolume),
			ValidateUpdate: typedUpdate(validation.ValidatePersistentVolumeUpdate),
			Table:          table("", "persistentvolumes")},
		{GVK: core.WithKind("Secret"), Resource: "secrets", Singular: "secret", Namespaced: true,
			New: newFn[corev1.Secret](), NewList: newFn[corev1.SecretList](),
			Validate: typed(validation.ValidateSecret), Table: table("", "secrets")},
		{GVK: core.WithKind("ServiceAccount"), Resource: "serviceaccounts", Singular: "serviceaccount", Namespaced: true,
			New: newFn[corev1.ServiceAccount](), NewList: newFn[corev1.ServiceAccountList](), ShortNames: []string{"sa"},
			Table: table("", "serviceaccounts")},
		{GVK: discoveryv1.SchemeGroupVersion.WithKind("EndpointSlice"), Resource: "endpointslices", Singular: "endpointslice", Namespaced: true,
			New: newFn[discoveryv1.EndpointSlice](), NewList: newFn[discoveryv1.EndpointSliceList](),
			Validate: typed(validation.ValidateEndpointSlice), ValidateUpdate: typedUpdate(validation.ValidateEndpointSliceUpdate),
			Table: table("discovery.k8s.io", "endpointslices")},
		{GVK: coordinationv1.SchemeGroupVersion.WithKind("Lease"), Resource: "leases", Singular: "lease", Namespaced: true,
			New: newFn[coordinationv1.Lease](), NewList: newFn[coordinationv1.LeaseList](),
			Table: table("coordination.k8s.io", "leases")},
		{GVK: networkingv1.SchemeGroupVersion.WithKind("ServiceCIDR"), Resource: "servicecidrs", Singular: "servicecidr",
			New: newFn[networkingv1.ServiceCIDR](), NewList: newFn[networkingv1.ServiceCIDRList](),
			HasStatus: true, NoGeneration: true, Table: table("networking.k8s.io", "servicecidrs")},
		{GVK: networkingv1.SchemeGroupVersion.WithKind("Ingress"), Resource: "ingresses", Singular: "ingress", Namespaced: true,
			New: newFn[networkingv1.Ingress](), NewList: newFn[networkingv1.IngressList](), ShortNames: []string{"ing"},
			HasStatus: true, Validate: typed(validation.ValidateIngress), ValidateUpdate: typedUpdate(validation.ValidateIngressUpdate),
			Table: table("networking.k8s.io", "ingresses")},
		{GVK: networkingv1.SchemeGroupVersion.WithKind("IngressClass"), Resource: "ingressclasses", Singular: "ingressclass",
			New: newFn[networkingv1.IngressClass](), NewList: newFn[networkingv1.IngressClassList](),
			Validate: typed(validation.ValidateIngressClass), ValidateUpdate: typedUpdate(validation.ValidateIngressClassUpdate),
			Table: table("networking.k8s.io", "ingressclasses")},
		{GVK: networkingv1.SchemeGroupVersion.WithKind("IPAddress"), Resource: "ipaddresses", Singular: "ipaddress",
			New: newFn[networkingv1.IPAddress](), NewList: newFn[networkingv1.IPAddressList](), ShortNames: []string{"ip"},
			Table: table("networking.k8s.io", "ipaddresses")},
		{GVK: core.WithKind("ReplicationController"), Resource: "replicationcontrollers", Singular: "replicationcontroller", Namespaced: true,
			New: newFn[corev1.ReplicationController](), NewList: newFn[corev1.ReplicationControllerList](),
			ShortNames: []string{"rc"}, Categories: []string{"all"}, HasStatus: true,
			Validate: typed(validation.ValidateReplicationController), Table: table("", "replicationcontrollers")},
		{GVK: apps.WithKind("Deployment"), Resource: "deployments", Singular: "deployment", Namespaced: true,
			New: newFn[appsv1.Deployment](), NewList: newFn[appsv1.DeploymentList](),
			ShortNames: []string{"deploy"}, Categories: []string{"all"}, HasStatus: true,
			Validate: typed(validation.ValidateDeployment), Table: table("apps", "deployments")},
		{GVK: apps.WithKind("ReplicaSet"), Resource: "replicasets", Singular: "replicaset", Namespaced: true,
			New: newFn[appsv1.ReplicaSet](), NewList: newFn[appsv1.ReplicaSetList](),
			ShortNames: []string{"rs"}, Categories: []string{"all"}, HasStatus: true,
			Validate: typed(validation.ValidateReplicaSet), Table: table("apps", "replicasets")},
		{GVK: apps.WithKind("StatefulSet"), Resource: "statefulsets", Singular: "statefulset", Namespaced: true,
			New: newFn[appsv1.StatefulSet](), NewList: newFn[appsv1.StatefulSetList](),
			ShortNames: []string{"sts"}, Categories: []string{"all"}, HasStatus: true,
			Validate: typed(validation.ValidateStatefulSet), Table: table("apps", "statefulsets")},
		{GVK: apps.WithKind("DaemonSet"), Resource: "daemonsets", Singular: "daemonset", Namespaced: true,
			New: newFn[appsv1.DaemonSet](), NewList: newFn[appsv1.DaemonSetList](),
			ShortNames: []string{"ds"}, Categories: []string{"all"}, HasStatus: true,
			Validate: typed(validation.ValidateDaemonSet), Table: table("apps", "daemonsets")},
		{GVK: portalv1.SchemeGroupVersion.WithKind("AddressPool"), Resource: "addresspools", Singular: "addresspool",
			New: newFn[portalv1.AddressPool](), NewList: newFn[portalv1.AddressPoolList](), ShortNames: []string{"pool"},
			HasStatus: true, Validate: typed(validation.ValidateAddressPool),
			ValidateUpdate:       typedUpdate(validation.ValidateAddressPoolUpdate),
			ValidateStatusUpdate: typedUpdate(validation.ValidateAddressPoolStatusUpdate),
			Table:                table("portal.dev", "addresspools")},
		{GVK: apps.WithKind("ControllerRevision"), Resource: "controllerrevisions", Singular: "controllerrevision", Namespaced: true,
			New: newFn[appsv1.ControllerRevision](), NewList: newFn[appsv1.ControllerRevisionList](),
			Table: table("apps", "controllerrevisions")},
		resourceQuotaKind(),
	}
}

// scalable says which kinds get a /scale subresource.
var scalable = map[string]bool{"replicationcontrollers": true, "deployments": true, "replicasets": true, "statefulsets": true}

func (s *Server) installResources(ctx context.Context, optsGetter generic.RESTOptionsGetter) error {
	serviceNet, _ := s.cfg.ServiceNet()
	base, size, _ := config.ParsePortRange(s.cfg.NodePortRange)
	allocs, err := newServiceAllocation(ctx, s.backend.Client(), s.cfg.EtcdPrefix, serviceNet, base, size)
	if err != nil {
		return err
	}
	allocs.minAge = s.cfg.RepairMinAge
	s.services = allocs

	groups := map[string]map[string]rest.Storage{}
	add := func(group, resource string, st rest.Storage) {
		if groups[group] == nil {
			groups[group] = map[string]rest.Storage{}
		}
		groups[group][resource] = st
	}
	addKind := func(st *registry.Storage, k *registry.Kind) {
		add(k.GVK.Group, k.Resource, st.Store)
		if st.Status != nil {
			add(k.GVK.Group, k.Resource+"/status", st.Status)
		}
		if scalable[k.Resource] {
			add(k.GVK.Group, k.Resource+"/scale", registry.NewScale(st.Store.Store, k))
		}
	}
	var nodes, endpoints rest.Getter
	for _, k := range simpleKinds() {
		st, err := registry.NewStorage(k, Scheme, optsGetter)
		if err != nil {
			return err
		}
		addKind(st, k)
		switch k.Resource {
		case "nodes":
			nodes = st.Store
		case "endpoints":
			endpoints = st.Store
		}
	}

	svcOpts := service.Options{
		Validation: validation.ServiceOptions{ServiceCIDRs: []*net.IPNet{serviceNet}, NodePortRange: utilnet.PortRange{Base: base, Size: size}, DeferAllocatedFields: true},
		Allocators: allocs.allocators(),
		Table:      table("", "services"),
	}
	svc, err := service.NewStorage(svcOpts, Scheme, optsGetter)
	if err != nil {
		return err
	}
	addKind(svc, service.Kind(svcOpts))
	add("", "services/proxy", &proxy.Services{Services: svc.Store, Endpoints: endpoints})

	agents, err := s.agentTransport()
	if err != nil {
		return err
	}
	pods, err := pod.NewStorage(table("", "pods"), Scheme, optsGetter, pod.NodeConnection{Nodes: nodes, Transport: agents})
	if err != nil {
		return err
	}
	for sub, st := range pods {
		add("", sub, st)
	}
	add("", "pods/proxy", &proxy.Pods{Pods: pods["pods"].(rest.Getter)})
	ns, err := registry.NewNamespaceStorage(table("", "namespaces"), validation.ValidateNamespace, Scheme, optsGetter)
	if err != nil {
		return err
	}
	for sub, st := range ns {
		add("", sub, st)
	}

	installQuotaAdmission(groups[""])
	coreInfo := genericapiserver.NewDefaultAPIGroupInfo("", Scheme, ParameterCodec, Codecs)
	coreInfo.VersionedResourcesStorageMap["v1"] = groups[""]
	coreInfo.NegotiatedSerializer = newNegotiatedSerializer()
	if err := s.generic.InstallLegacyAPIGroup(genericapiserver.DefaultLegacyAPIPrefix, &coreInfo); err != nil {
		return fmt.Errorf("installing core/v1: %w", err)
	}
	var infos []*genericapiserver.APIGroupInfo
	for _, g := range servedGroupVersions {
		if g.gv.Group == "" || groups[g.gv.Group] == nil {
			continue
		}
		info := genericapiserver.NewDefaultAPIGroupInfo(g.gv.Group, Scheme, ParameterCodec, Codecs)
		info.VersionedResourcesStorageMap[g.gv.Version] = groups[g.gv.Group]
		infos = append(infos, &info)
	}
	if err := s.generic.InstallAPIGroups(infos...); err != nil {
		return fmt.Errorf("installing API groups: %w", err)
	}
	return nil
}

// agentTransport reaches node agents for pods/log, exec and attach as
// kube-apiserver-kubelet-client in system:masters (what agents authorize).
// As upstream without --kubelet-certificate-authority, the agent's
// self-signed serving certificate is not verified: only the server side
// skips verification, the agent still verifies us. Pinning agent certs (or
// issuing them from the cluster CA) is the later improvement.
func (s *Server) agentTransport() (*http.Transport, error) {
	certPEM, keyPEM, err := s.bundle.IssueClientCertificate("kube-apiserver-kubelet-client", []string{"system:masters"}, time.Now())
	if err != nil {
		return nil, fmt.Errorf("node agent client certificate: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("node agent client certificate: %w", err)
	}
	// No proxy from the environment: agents are on the node network.
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
		MaxIdleConnsPerHost: 25,
		TLSClientConfig: &tls.Config{
			Certificates:       []tls.Certificate{cert},
			InsecureSkipVerify: true, //nolint:gosec // see above: agents serve self-signed certificates
			MinVersion:         tls.VersionTLS12,
			// Exec and attach upgrade the connection: HTTP/1.1 only.
			NextProtos: []string{"http/1.1"},
		},
	}, nil
}
