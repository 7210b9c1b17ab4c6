// Package printers owns the server-side table output of portal's API server:
// the rest.TableConvertor behind `kubectl get` (which asks for
// application/json;as=Table;v=v1;g=meta.k8s.io and prints whatever columns the
// server returns). Without a convertor per resource kubectl would only show
// NAME and AGE.
//
// The columns, their -o wide priorities and the cell formats re-implement the
// behaviour of Kubernetes' own printers (pkg/printers/internalversion) on the
// k8s.io/api v1 types, so the output reads the way kubectl users know it.
//
// # API
//
//   - TableConvertor is the generic, table-driven convertor: a list of column
//     definitions plus one row function per Go type (see RowOf). It converts
//     single objects and lists, copies list metadata, honours
//     metav1.TableOptions.NoHeaders and ages objects against an injectable
//     clock (WithClock).
//   - One constructor per resource (ServiceTable, PodTable, ...) returns a
//     ready convertor; For(schema.GroupResource) looks one up by resource, e.g.
//     For(schema.GroupResource{Group: "apps", Resource: "deployments"}), and
//     Resources lists every resource it knows.
//
// Covered resources: core services, endpoints, pods, nodes, namespaces,
// events, configmaps, secrets, serviceaccounts, replicationcontrollers,
// podtemplates, persistentvolumes, persistentvolumeclaims, resourcequotas;
// apps replicasets, deployments, statefulsets, daemonsets,
// controllerrevisions; discovery.k8s.io endpointslices; coordination.k8s.io
// leases; networking.k8s.io servicecidrs, ipaddresses, ingresses,
// ingressclasses, networkpolicies; policy poddisruptionbudgets; autoscaling
// (v1) horizontalpodautoscalers. Services print both k8s.io/api's Service and
// portal's own core.Service.
//
// As upstream's server does, every row always carries the wide (Priority 1)
// cells; kubectl hides those columns unless -o wide is given.
package printers
