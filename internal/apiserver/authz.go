package apiserver

import (
	"context"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// publicPaths are readable without credentials, as Kubernetes' default
// system:public-info-viewer role allows.
var publicPaths = map[string]bool{
	"/healthz": true, "/livez": true, "/readyz": true, "/version": true, "/version/": true,
	// The cluster CA certificate: joining agents fetch it and check it
	// against the hash in their join token.
	"/cacerts": true,
}

// authorizerFunc: authenticated users (the admin certificate, agents, the
// loopback client) may do everything; anonymous users may only read the
// public health and version endpoints. Fine-grained RBAC is not part of
// portal yet.
func newAuthorizer() authorizer.Authorizer {
	return authorizer.AuthorizerFunc(func(ctx context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
		u := a.GetUser()
		if u == nil {
			return authorizer.DecisionNoOpinion, "no user", nil
		}
		for _, g := range u.GetGroups() {
			if g == user.AllAuthenticated || g == user.SystemPrivilegedGroup {
				return authorizer.DecisionAllow, "", nil
			}
		}
		if !a.IsResourceRequest() && a.GetVerb() == "get" && publicPaths[a.GetPath()] {
			return authorizer.DecisionAllow, "public info", nil
		}
		return authorizer.DecisionNoOpinion, "anonymous requests may only read /healthz, /livez, /readyz, /version and /cacerts", nil
	})
}
