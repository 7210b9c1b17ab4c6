package v1

// The OpenAPI names follow Kubernetes' reversed-domain convention
// (io.k8s.api.core.v1.Service): kubectl explain and server-side apply find
// the kinds as dev.portal.v1.<Kind>.

// OpenAPIModelName returns the OpenAPI model name of AddressPool.
func (AddressPool) OpenAPIModelName() string { return "dev.portal.v1.AddressPool" }

// OpenAPIModelName returns the OpenAPI model name of AddressPoolList.
func (AddressPoolList) OpenAPIModelName() string { return "dev.portal.v1.AddressPoolList" }

// OpenAPIModelName returns the OpenAPI model name of AddressPoolSpec.
func (AddressPoolSpec) OpenAPIModelName() string { return "dev.portal.v1.AddressPoolSpec" }

// OpenAPIModelName returns the OpenAPI model name of AddressPoolStatus.
func (AddressPoolStatus) OpenAPIModelName() string { return "dev.portal.v1.AddressPoolStatus" }
