// Package podutil holds the pod-to-endpoint rules shared by the Endpoints and
// EndpointSlice controllers, so that both objects always agree on which pods
// back a Service, which ports they expose and which hostname they publish.
package podutil
