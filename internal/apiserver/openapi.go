package apiserver

import (
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/portal-net/portal/internal/apiserver/openapi"
)

//go:generate openapi-gen --output-dir openapi --output-pkg github.com/portal-net/portal/internal/apiserver/openapi --output-file zz_generated.openapi.go --go-header-file ../../hack/boilerplate.go.txt --report-filename /dev/null k8s.io/api/core/v1 k8s.io/api/apps/v1 k8s.io/api/discovery/v1 k8s.io/api/coordination/v1 k8s.io/api/networking/v1 k8s.io/api/autoscaling/v1 k8s.io/api/policy/v1 k8s.io/apimachinery/pkg/apis/meta/v1 k8s.io/apimachinery/pkg/runtime k8s.io/apimachinery/pkg/util/intstr k8s.io/apimachinery/pkg/api/resource k8s.io/apimachinery/pkg/version

// openAPIDefinitions are the generated k8s.io/api definitions with portal's
// additions: ServiceSpec keeps the seed's topologyKeys.
func openAPIDefinitions(ref common.ReferenceCallback) map[string]common.OpenAPIDefinition {
	defs := openapi.GetOpenAPIDefinitions(ref)
	const specName = "io.k8s.api.core.v1.ServiceSpec"
	d := defs[specName]
	props := make(map[string]spec.Schema, len(d.Schema.Properties)+1)
	for k, v := range d.Schema.Properties {
		props[k] = v
	}
	props["topologyKeys"] = spec.Schema{
		VendorExtensible: spec.VendorExtensible{Extensions: spec.Extensions{"x-kubernetes-list-type": "atomic"}},
		SchemaProps: spec.SchemaProps{
			Description: "topologyKeys is a preference-order list of topology keys which implementations of services should use to preferentially sort endpoints when accessing this Service: kubernetes.io/hostname, topology.kubernetes.io/zone, topology.kubernetes.io/region, or \"*\" (any endpoint, only as the last key). Removed from Kubernetes in 1.22 and kept by portal; new manifests should use trafficDistribution.",
			Type:        []string{"array"},
			Items: &spec.SchemaOrArray{Schema: &spec.Schema{SchemaProps: spec.SchemaProps{
				Type: []string{"string"}, Default: "",
			}}},
		},
	}
	d.Schema.Properties = props
	defs[specName] = d
	return defs
}
