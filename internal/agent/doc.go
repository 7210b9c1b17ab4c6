// Package agent is portal's node agent, the kubelet of this system: it
// registers the Node and keeps its Lease, gives the node its pod network,
// and runs the pods the scheduler bound to it through a podruntime.Runtime,
// reporting their status, probes and events through the API. Pods run under
// per-pod supervisors that outlive the agent, which re-adopts them on start.
package agent
