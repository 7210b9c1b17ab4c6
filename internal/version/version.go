// Package version holds the versions portal reports. Build flags
// (-ldflags -X) may override Version; KubernetesVersion is the API level
// portal implements and what `kubectl version` shows as the server.
package version

// KubernetesVersion is the Kubernetes release whose API portal serves.
var KubernetesVersion = "1.37.2"

// Version is portal's own version.
var Version = "v0.1.0-dev"
