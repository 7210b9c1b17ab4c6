package nodelifecycle

import (
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Reasons and messages the controller writes into conditions it takes
// over, as upstream writes them.
const (
	reasonStatusUnknown      = "NodeStatusUnknown"
	reasonStatusNeverUpdated = "NodeStatusNeverUpdated"
	messageStatusUnknown     = "Kubelet stopped posting node status."
	messageNeverUpdated      = "Kubelet never posted node status."
)

// watchedConditions are the conditions the node agent owns and the
// controller marks Unknown when the agent goes silent.
var watchedConditions = []v1.NodeConditionType{v1.NodeReady, v1.NodeMemoryPressure, v1.NodeDiskPressure, v1.NodePIDPressure}

// health is what the controller remembers about one node between checks.
type health struct {
	// probe is the controller's own time when it last saw the node renew
	// (a newer lease renewTime or Ready heartbeat). Timing on our clock
	// rather than the node's makes clock skew between them irrelevant.
	probe     time.Time
	heartbeat time.Time
	renew     time.Time
	ready     v1.ConditionStatus
}

// observe folds the node's current heartbeat and lease into h.
func observe(h *health, node *v1.Node, lease *coordinationv1.Lease, now time.Time) *health {
	var heartbeat time.Time
	var ready v1.ConditionStatus
	if c := condition(node, v1.NodeReady); c != nil {
		heartbeat, ready = c.LastHeartbeatTime.Time, c.Status
	}
	var renew time.Time
	if lease != nil && lease.Spec.RenewTime != nil {
		renew = lease.Spec.RenewTime.Time
	}
	if h == nil {
		h = &health{probe: now, heartbeat: heartbeat, renew: renew, ready: ready}
		if condition(node, v1.NodeReady) == nil && renew.IsZero() {
			// Never heard from: the startup grace runs from creation.
			h.probe = node.CreationTimestamp.Time
		}
		return h
	}
	if heartbeat.After(h.heartbeat) || renew.After(h.renew) {
		h.probe = now
	}
	h.heartbeat = maxTime(h.heartbeat, heartbeat)
	h.renew = maxTime(h.renew, renew)
	return h
}

// gracePeriod is how long node may stay silent: longer for a node that
// never posted status, as booting takes a while.
func gracePeriod(node *v1.Node, o Options) time.Duration {
	if condition(node, v1.NodeReady) == nil {
		return o.NodeStartupGracePeriod
	}
	return o.NodeMonitorGracePeriod
}

// staleConditions returns the node's conditions with every watched one
// set Unknown when the node has been silent past its grace period, and
// whether that changed anything.
func staleConditions(node *v1.Node, h *health, o Options, now time.Time) ([]v1.NodeCondition, bool) {
	if !now.After(h.probe.Add(gracePeriod(node, o))) {
		return nil, false
	}
	conds := make([]v1.NodeCondition, len(node.Status.Conditions))
	copy(conds, node.Status.Conditions)
	nowMeta := metav1.NewTime(now)
	changed := false
	for _, t := range watchedConditions {
		i := -1
		for j := range conds {
			if conds[j].Type == t {
				i = j
			}
		}
		if i < 0 {
			conds = append(conds, v1.NodeCondition{
				Type: t, Status: v1.ConditionUnknown,
				Reason: reasonStatusNeverUpdated, Message: messageNeverUpdated,
				LastHeartbeatTime: node.CreationTimestamp, LastTransitionTime: nowMeta,
			})
			changed = true
			continue
		}
		if conds[i].Status == v1.ConditionUnknown {
			continue
		}
		// The heartbeat time stays: it is the last time the node spoke.
		conds[i].Status = v1.ConditionUnknown
		conds[i].Reason = reasonStatusUnknown
		conds[i].Message = messageStatusUnknown
		conds[i].LastTransitionTime = nowMeta
		changed = true
	}
	return conds, changed
}

func condition(node *v1.Node, t v1.NodeConditionType) *v1.NodeCondition {
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == t {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}

// readyStatus is the node's Ready status, "" when it never reported one.
func readyStatus(node *v1.Node) v1.ConditionStatus {
	if c := condition(node, v1.NodeReady); c != nil {
		return c.Status
	}
	return ""
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
