// Package images decides what process a container image runs on this node.
//
// No registry is reachable, so nothing is pulled: a few images are built
// into the runtime's shim binary (agnhost, pause, nginx/httpd), busybox
// images run the host's busybox, and any other image can run only when the
// pod names a command that exists on the host filesystem. Resolve is the
// single entry point; it returns the argv to exec or an
// *podruntime.ImageError whose Reason the pod status shows.
package images
