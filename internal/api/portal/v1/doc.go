// Package v1 is portal's own API group, portal.dev/v1, served by portal's
// API server beside the Kubernetes groups: kubectl get, describe, apply,
// edit and explain work on its kinds as on built-in ones.
//
// AddressPool is the set of addresses LoadBalancer Services get their
// status.loadBalancer.ingress from (issue 9). `portal up --lb-pool CIDR`
// keeps a pool named "default"; more pools are ordinary objects.
//
// +k8s:deepcopy-gen=package
// +k8s:openapi-gen=true
// +k8s:openapi-model-package=dev.portal.v1
// +groupName=portal.dev
package v1
