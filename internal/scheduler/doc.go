// Package scheduler owns portal's pod scheduler: it watches pods that have
// no node and name the default scheduler, picks a node with the predicates
// and scores of package fit (kube-scheduler's default profile, minus
// preemption and inter-pod affinity), and binds through the pods/binding
// subresource. Pods that fit nowhere get PodScheduled=False/Unschedulable and
// a FailedScheduling event, and are retried with backoff when nodes or pods
// change. An assume cache counts pods it has bound before the informer shows
// them, so back-to-back decisions never double-book a node.
package scheduler
