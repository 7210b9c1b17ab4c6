// Package controllermanager runs portal's controllers and scheduler inside
// `portal server`: it elects one active instance among the servers sharing
// an etcd (a Lease in kube-system), builds the shared informers and event
// recorders, and starts every controller for as long as it leads. All of
// them reach the cluster only through the API.
package controllermanager
