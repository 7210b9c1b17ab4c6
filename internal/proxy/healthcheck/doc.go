// Package healthcheck owns the proxy's HTTP surfaces that other systems
// probe: the per-service healthCheckNodePort servers a load balancer uses to
// find the nodes with local endpoints (externalTrafficPolicy Local), the
// proxy's own /healthz and /livez, and its Prometheus metrics. Names, status
// codes and bodies follow kube-proxy's so existing load balancers and
// dashboards work unchanged.
package healthcheck
