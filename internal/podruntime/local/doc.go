// Package local is the podruntime.Runtime that runs pods on this node as
// processes: per pod a directory under RootDir/pods/<uid>, a network
// attachment from network.Manager and a supervisor process (package shim)
// that outlives the agent. A new Runtime re-adopts the pods whose
// supervisors are alive; it never kills anything when it starts.
package local
