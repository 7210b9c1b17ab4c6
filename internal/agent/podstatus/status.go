package podstatus

import (
	"fmt"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Reasons of the kubelet-owned conditions, as the kubelet spells them.
const (
	ReasonContainersNotReady       = "ContainersNotReady"
	ReasonContainersNotInitialized = "ContainersNotInitialized"
	ReasonPodCompleted             = "PodCompleted"
	ReasonPodFailed                = "PodFailed"
	ReasonReadinessGatesNotReady   = "ReadinessGatesNotReady"

	// Waiting reasons of containers the agent has no status for yet.
	ReasonContainerCreating = "ContainerCreating"
	ReasonPodInitializing   = "PodInitializing"
)

// Inputs is what the agent observed of a pod.
type Inputs struct {
	// HostIP is the node's address.
	HostIP string
	// PodIPs are the sandbox's addresses, primary first. Host network pods
	// get HostIP when empty.
	PodIPs []string
	// InitStatuses and ContainerStatuses are the agent's view of each
	// container, in any order; containers missing here are reported waiting.
	InitStatuses, ContainerStatuses []v1.ContainerStatus
	// SandboxReady is true when the pod's sandbox and network are set up.
	SandboxReady bool
	// StartTime is when the agent accepted the pod; zero keeps the old one
	// (or uses Now when there is none).
	StartTime time.Time
	// Now stamps condition transitions.
	Now time.Time
	// Terminal is true when the agent will not start the pod's containers
	// again (deleted, evicted, past its deadline): once all are stopped, the
	// phase is Succeeded or Failed whatever the restart policy.
	Terminal bool
}

// Compute returns the pod's new status. pod.Status is the previous status: a
// terminal phase never changes, reason and message are kept while the phase
// is unchanged, conditions not owned by the kubelet (readiness gates,
// DisruptionTarget, ...) are kept, and a condition's lastTransitionTime only
// moves when its status changes.
func Compute(pod *v1.Pod, in Inputs) v1.PodStatus {
	old := &pod.Status
	now := metav1.NewTime(in.Now)
	var s v1.PodStatus
	s.ObservedGeneration = pod.Generation

	if in.HostIP != "" {
		s.HostIP = in.HostIP
		s.HostIPs = []v1.HostIP{{IP: in.HostIP}}
	}
	podIPs := in.PodIPs
	if len(podIPs) == 0 && pod.Spec.HostNetwork && in.HostIP != "" {
		podIPs = []string{in.HostIP}
	}
	for _, ip := range podIPs {
		s.PodIPs = append(s.PodIPs, v1.PodIP{IP: ip})
	}
	if len(s.PodIPs) > 0 {
		s.PodIP = s.PodIPs[0].IP
	}

	s.QOSClass = old.QOSClass
	if s.QOSClass == "" {
		s.QOSClass = QOSClass(pod)
	}

	switch {
	case old.StartTime != nil && !old.StartTime.IsZero():
		s.StartTime = old.StartTime.DeepCopy()
	case !in.StartTime.IsZero():
		t := metav1.NewTime(in.StartTime)
		s.StartTime = &t
	default:
		s.StartTime = &now
	}

	hasInit := len(pod.Spec.InitContainers) > 0
	s.InitContainerStatuses = inSpecOrder(pod.Spec.InitContainers, in.InitStatuses, ReasonContainerCreating)
	waiting := ReasonContainerCreating
	if hasInit {
		waiting = ReasonPodInitializing
	}
	s.ContainerStatuses = inSpecOrder(pod.Spec.Containers, in.ContainerStatuses, waiting)

	s.Phase = phase(pod, s.InitContainerStatuses, s.ContainerStatuses, in.Terminal)
	if s.Phase != v1.PodSucceeded && s.Phase != v1.PodFailed &&
		(old.Phase == v1.PodSucceeded || old.Phase == v1.PodFailed) {
		s.Phase = old.Phase
	}
	if s.Phase == old.Phase {
		s.Reason, s.Message = old.Reason, old.Message
	}

	for _, c := range old.Conditions {
		if !kubeletOwned(c.Type) {
			s.Conditions = append(s.Conditions, c)
		}
	}
	ready2start := v1.PodCondition{Type: v1.PodReadyToStartContainers, Status: v1.ConditionFalse}
	if in.SandboxReady {
		ready2start.Status = v1.ConditionTrue
	}
	initialized := initializedCondition(pod, s.InitContainerStatuses, s.ContainerStatuses, s.Phase)
	containersReady := containersReadyCondition(pod, s.InitContainerStatuses, s.ContainerStatuses, s.Phase)
	ready := readyCondition(pod, s.Conditions, containersReady)
	scheduled := v1.PodCondition{Type: v1.PodScheduled, Status: v1.ConditionTrue}
	for _, c := range []v1.PodCondition{ready2start, initialized, ready, containersReady, scheduled} {
		c.ObservedGeneration = pod.Generation
		c.LastTransitionTime = now
		if prev := findCondition(old.Conditions, c.Type); prev != nil && prev.Status == c.Status && !prev.LastTransitionTime.IsZero() {
			c.LastTransitionTime = prev.LastTransitionTime
		}
		s.Conditions = append(s.Conditions, c)
	}
	return s
}

func kubeletOwned(t v1.PodConditionType) bool {
	switch t {
	case v1.PodScheduled, v1.PodReady, v1.PodInitialized, v1.ContainersReady, v1.PodReadyToStartContainers:
		return true
	}
	return false
}

func findCondition(conds []v1.PodCondition, t v1.PodConditionType) *v1.PodCondition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// inSpecOrder orders statuses as the spec lists the containers, dropping
// unknown names and filling in a waiting status for the missing ones.
func inSpecOrder(spec []v1.Container, statuses []v1.ContainerStatus, waitingReason string) []v1.ContainerStatus {
	if len(spec) == 0 {
		return nil
	}
	byName := make(map[string]v1.ContainerStatus, len(statuses))
	for _, st := range statuses {
		byName[st.Name] = st
	}
	out := make([]v1.ContainerStatus, 0, len(spec))
	for i := range spec {
		c := &spec[i]
		st, ok := byName[c.Name]
		if !ok {
			st = v1.ContainerStatus{
				Name:  c.Name,
				Image: c.Image,
				State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: waitingReason}},
			}
			if isSidecar(c) || c.StartupProbe != nil {
				st.Started = new(bool)
			}
		}
		out = append(out, st)
	}
	return out
}

func statusOf(statuses []v1.ContainerStatus, name string) (v1.ContainerStatus, bool) {
	for _, st := range statuses {
		if st.Name == name {
			return st, true
		}
	}
	return v1.ContainerStatus{}, false
}

// anyRegularStarted tells whether the regular containers have ever run,
// i.e. initialization finished at some point.
func anyRegularStarted(statuses []v1.ContainerStatus) bool {
	for _, st := range statuses {
		if st.State.Running != nil || st.State.Terminated != nil || st.LastTerminationState.Terminated != nil {
			return true
		}
	}
	return false
}

// phase follows the kubelet's getPhase with container restart rules.
func phase(pod *v1.Pod, initStatuses, statuses []v1.ContainerStatus, terminal bool) v1.PodPhase {
	initialized := anyRegularStarted(statuses)
	pendingInit, pendingSidecars, failedInitFinal := 0, 0, 0
	var running, waiting, stopped, stoppedFinal, succeeded, unknown int

	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		st, ok := statusOf(initStatuses, c.Name)
		if isSidecar(c) {
			switch {
			case !ok:
				unknown++
			case st.State.Running != nil:
				if st.Started == nil || !*st.Started {
					pendingSidecars++
				}
				running++
			case st.State.Terminated != nil, st.State.Waiting != nil && st.LastTerminationState.Terminated != nil:
				// A stopped sidecar does not decide the phase.
			case st.State.Waiting != nil:
				pendingSidecars++
				waiting++
			default:
				pendingSidecars++
				unknown++
			}
			continue
		}
		switch {
		case !ok, st.State.Running != nil:
			pendingInit++
		case st.State.Terminated != nil:
			if code := st.State.Terminated.ExitCode; code != 0 && !ContainerShouldRestart(pod, c, true, code) {
				failedInitFinal++
			}
		case st.State.Waiting != nil && st.LastTerminationState.Terminated != nil:
			if code := st.LastTerminationState.Terminated.ExitCode; code != 0 {
				if !ContainerShouldRestart(pod, c, true, code) {
					failedInitFinal++
				}
			}
		default:
			pendingInit++
		}
	}

	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		st, ok := statusOf(statuses, c.Name)
		var term *v1.ContainerStateTerminated
		switch {
		case !ok:
			unknown++
			continue
		case st.State.Running != nil:
			running++
			continue
		case st.State.Terminated != nil:
			term = st.State.Terminated
		case st.State.Waiting != nil && st.LastTerminationState.Terminated != nil:
			term = st.LastTerminationState.Terminated
		case st.State.Waiting != nil:
			waiting++
			continue
		default:
			unknown++
			continue
		}
		stopped++
		if !ContainerShouldRestart(pod, c, false, term.ExitCode) {
			stoppedFinal++
		}
		// Only a container terminated now counts as succeeded; one waiting
		// to restart is not done.
		if st.State.Terminated != nil && term.ExitCode == 0 {
			succeeded++
		}
	}

	if failedInitFinal > 0 {
		return v1.PodFailed
	}
	switch {
	case pendingInit > 0 || (pendingSidecars > 0 && !initialized):
		return v1.PodPending
	case waiting > 0:
		return v1.PodPending
	case running > 0 && unknown == 0:
		return v1.PodRunning
	case running == 0 && stopped > 0 && unknown == 0:
		if !terminal && stopped != stoppedFinal {
			return v1.PodRunning
		}
		if stopped == succeeded {
			return v1.PodSucceeded
		}
		return v1.PodFailed
	}
	return v1.PodPending
}

func initializedCondition(pod *v1.Pod, initStatuses, statuses []v1.ContainerStatus, ph v1.PodPhase) v1.PodCondition {
	cond := v1.PodCondition{Type: v1.PodInitialized, Status: v1.ConditionTrue}
	var unknown, incomplete []string
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		st, ok := statusOf(initStatuses, c.Name)
		switch {
		case !ok:
			unknown = append(unknown, c.Name)
		case isSidecar(c):
			if st.Started == nil || !*st.Started {
				incomplete = append(incomplete, c.Name)
			}
		case !st.Ready && (st.State.Terminated == nil || st.State.Terminated.ExitCode != 0):
			// The agent marks a regular init container Ready when it
			// completed; a clean exit counts too.
			incomplete = append(incomplete, c.Name)
		}
	}
	if ph == v1.PodSucceeded && len(unknown) == 0 {
		cond.Reason = ReasonPodCompleted
		return cond
	}
	if anyRegularStarted(statuses) {
		return cond
	}
	var msgs []string
	if len(unknown) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with unknown status: %s", unknown))
	}
	if len(incomplete) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with incomplete status: %s", incomplete))
	}
	if len(msgs) > 0 {
		cond.Status = v1.ConditionFalse
		cond.Reason = ReasonContainersNotInitialized
		cond.Message = strings.Join(msgs, ", ")
	}
	return cond
}

func containersReadyCondition(pod *v1.Pod, initStatuses, statuses []v1.ContainerStatus, ph v1.PodPhase) v1.PodCondition {
	cond := v1.PodCondition{Type: v1.ContainersReady, Status: v1.ConditionTrue}
	var unknown, unready []string
	check := func(name string, sts []v1.ContainerStatus) {
		st, ok := statusOf(sts, name)
		switch {
		case !ok:
			unknown = append(unknown, name)
		case !st.Ready:
			unready = append(unready, name)
		}
	}
	for i := range pod.Spec.InitContainers {
		if isSidecar(&pod.Spec.InitContainers[i]) {
			check(pod.Spec.InitContainers[i].Name, initStatuses)
		}
	}
	for i := range pod.Spec.Containers {
		check(pod.Spec.Containers[i].Name, statuses)
	}
	switch {
	case ph == v1.PodSucceeded && len(unknown) == 0:
		cond.Status, cond.Reason = v1.ConditionFalse, ReasonPodCompleted
		return cond
	case ph == v1.PodFailed:
		cond.Status, cond.Reason = v1.ConditionFalse, ReasonPodFailed
		return cond
	}
	var msgs []string
	if len(unknown) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with unknown status: %s", unknown))
	}
	if len(unready) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with unready status: %s", unready))
	}
	if len(msgs) > 0 {
		cond.Status = v1.ConditionFalse
		cond.Reason = ReasonContainersNotReady
		cond.Message = strings.Join(msgs, ", ")
	}
	return cond
}

// readyCondition is ContainersReady further gated by spec.readinessGates,
// whose conditions other controllers set on the pod.
func readyCondition(pod *v1.Pod, conds []v1.PodCondition, containersReady v1.PodCondition) v1.PodCondition {
	cond := v1.PodCondition{Type: v1.PodReady, Status: containersReady.Status, Reason: containersReady.Reason, Message: containersReady.Message}
	if cond.Status != v1.ConditionTrue {
		return cond
	}
	var msgs []string
	for _, g := range pod.Spec.ReadinessGates {
		c := findCondition(conds, g.ConditionType)
		switch {
		case c == nil:
			msgs = append(msgs, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", g.ConditionType))
		case c.Status != v1.ConditionTrue:
			msgs = append(msgs, fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %v", g.ConditionType, c.Status))
		}
	}
	if len(msgs) > 0 {
		cond.Status = v1.ConditionFalse
		cond.Reason = ReasonReadinessGatesNotReady
		cond.Message = strings.Join(msgs, ", ")
	}
	return cond
}

// QOSClass classifies a pod as the kubelet does from its containers' CPU and
// memory requests and limits: BestEffort with none, Guaranteed when every
// container limits both and requests (if given) equal the limits, else
// Burstable.
func QOSClass(pod *v1.Pod) v1.PodQOSClass {
	requests, limits := v1.ResourceList{}, v1.ResourceList{}
	guaranteed := true
	add := func(into v1.ResourceList, name v1.ResourceName, q resource.Quantity) {
		if q.IsZero() {
			return
		}
		sum := into[name]
		sum.Add(q)
		into[name] = sum
	}
	all := append(append([]v1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...)
	for _, c := range all {
		for _, n := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory} {
			if q, ok := c.Resources.Requests[n]; ok {
				add(requests, n, q)
			}
			q, ok := c.Resources.Limits[n]
			if ok {
				add(limits, n, q)
			}
			if !ok || q.IsZero() {
				guaranteed = false
			}
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return v1.PodQOSBestEffort
	}
	if guaranteed {
		for n, r := range requests {
			if l, ok := limits[n]; !ok || l.Cmp(r) != 0 {
				guaranteed = false
			}
		}
	}
	// Requests the API did not default from limits make a pod Burstable.
	if guaranteed && len(requests) == len(limits) {
		return v1.PodQOSGuaranteed
	}
	return v1.PodQOSBurstable
}
