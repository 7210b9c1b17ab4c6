// Package apiserver wires portal's API server: the scheme (k8s.io/api types
// registered as their own internal version, plus portal's Service), OpenAPI,
// authentication and authorization, the generic registry storage of every
// served resource on etcd, Service allocation with its repair loop, and the
// bootstrap objects every cluster has (system namespaces, the kubernetes
// service, the default ServiceCIDR).
package apiserver
