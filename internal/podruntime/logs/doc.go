// Package logs owns the container log files: Writer turns a container's
// stdout/stderr into CRI-format lines ("<RFC3339Nano> <stream> <F|P> <text>")
// and Read turns such a file back into what `kubectl logs` prints.
package logs
