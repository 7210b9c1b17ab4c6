package statefulset

import (
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// controllerKind is the kind written into owner references.
var controllerKind = appsv1.SchemeGroupVersion.WithKind("StatefulSet")

// startOrdinal is the first ordinal of set (spec.ordinals.start, default 0).
func startOrdinal(set *appsv1.StatefulSet) int {
	if set.Spec.Ordinals != nil {
		return int(set.Spec.Ordinals.Start)
	}
	return 0
}

func replicaCount(set *appsv1.StatefulSet) int {
	if set.Spec.Replicas == nil {
		return 1
	}
	return int(*set.Spec.Replicas)
}

// podName is the stable name of the pod at ordinal.
func podName(set *appsv1.StatefulSet, ordinal int) string {
	return set.Name + "-" + strconv.Itoa(ordinal)
}

// parseOrdinal splits "<parent>-<ordinal>"; ok is false for names that do
// not follow the pattern, which are never members of any set.
func parseOrdinal(name string) (parent string, ordinal int, ok bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 || i == len(name)-1 {
		return "", -1, false
	}
	digits := name[i+1:]
	// "web-01" is not web's pod 1: only the canonical spelling counts.
	if len(digits) > 1 && digits[0] == '0' {
		return "", -1, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 {
		return "", -1, false
	}
	return name[:i], n, true
}

// ordinalOf returns the pod's ordinal, or -1 when its name has none.
func ordinalOf(pod *v1.Pod) int {
	_, n, ok := parseOrdinal(pod.Name)
	if !ok {
		return -1
	}
	return n
}

// isMember reports whether pod's name makes it one of set's pods.
func isMember(set *appsv1.StatefulSet, pod *v1.Pod) bool {
	parent, _, ok := parseOrdinal(pod.Name)
	return ok && parent == set.Name
}

// revisionOf is the revision a pod was created from.
func revisionOf(pod *v1.Pod) string {
	return pod.Labels[appsv1.ControllerRevisionHashLabelKey]
}

// newPod builds the pod for ordinal from template, at revision.
func newPod(set *appsv1.StatefulSet, template *v1.PodTemplateSpec, revision string, ordinal int) *v1.Pod {
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:            podName(set, ordinal),
			Namespace:       set.Namespace,
			Labels:          map[string]string{},
			Annotations:     map[string]string{},
			Finalizers:      append([]string(nil), template.Finalizers...),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(set, controllerKind)},
		},
		Spec: *template.Spec.DeepCopy(),
	}
	for k, v := range template.Labels {
		pod.Labels[k] = v
	}
	for k, v := range template.Annotations {
		pod.Annotations[k] = v
	}
	pod.Labels[appsv1.ControllerRevisionHashLabelKey] = revision
	setIdentity(set, pod)
	// Hostname and subdomain make <pod>.<serviceName>.<ns>.svc resolvable;
	// they are immutable on a pod, so they are only set at creation.
	pod.Spec.Hostname = pod.Name
	pod.Spec.Subdomain = set.Spec.ServiceName
	addClaimVolumes(set, pod)
	return pod
}

// setIdentity writes the identity labels; it is also how a pod whose labels
// were edited away gets them back.
func setIdentity(set *appsv1.StatefulSet, pod *v1.Pod) {
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[appsv1.StatefulSetPodNameLabel] = pod.Name
	if _, n, ok := parseOrdinal(pod.Name); ok {
		pod.Labels[appsv1.PodIndexLabel] = strconv.Itoa(n)
	}
}

// identityMatches reports whether pod already carries the identity its
// name promises.
func identityMatches(set *appsv1.StatefulSet, pod *v1.Pod) bool {
	_, n, ok := parseOrdinal(pod.Name)
	return ok && isMember(set, pod) && pod.Namespace == set.Namespace &&
		pod.Labels[appsv1.StatefulSetPodNameLabel] == pod.Name &&
		pod.Labels[appsv1.PodIndexLabel] == strconv.Itoa(n)
}

// addClaimVolumes stands in for the claims of volumeClaimTemplates. Upstream
// mounts claim "<template>-<set>-<ordinal>"; this cluster stores
// PersistentVolumeClaims but nothing provisions or binds them, so an
// emptyDir of the template's name keeps volumeMounts valid (without
// persistence across pod restarts).
func addClaimVolumes(set *appsv1.StatefulSet, pod *v1.Pod) {
	for _, t := range set.Spec.VolumeClaimTemplates {
		found := false
		for i := range pod.Spec.Volumes {
			if pod.Spec.Volumes[i].Name == t.Name {
				found = true
				break
			}
		}
		if !found {
			pod.Spec.Volumes = append(pod.Spec.Volumes, v1.Volume{
				Name:         t.Name,
				VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}},
			})
		}
	}
}

// Pod states, as the rollout logic sees them.

func isTerminating(pod *v1.Pod) bool { return pod.DeletionTimestamp != nil }

func isFinished(pod *v1.Pod) bool {
	return pod.Status.Phase == v1.PodFailed || pod.Status.Phase == v1.PodSucceeded
}

func readyCondition(pod *v1.Pod) *v1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == v1.PodReady {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

func isRunningAndReady(pod *v1.Pod) bool {
	c := readyCondition(pod)
	return pod.Status.Phase == v1.PodRunning && c != nil && c.Status == v1.ConditionTrue
}

// availableIn returns how long until a running and ready pod counts as
// available: 0 when it already does, -1 when it is not ready at all.
func availableIn(pod *v1.Pod, minReady time.Duration, now time.Time) time.Duration {
	if !isRunningAndReady(pod) {
		return -1
	}
	if minReady <= 0 {
		return 0
	}
	c := readyCondition(pod)
	if c.LastTransitionTime.IsZero() {
		return minReady
	}
	if left := c.LastTransitionTime.Add(minReady).Sub(now); left > 0 {
		return left
	}
	return 0
}

func isAvailable(pod *v1.Pod, minReady time.Duration, now time.Time) bool {
	return availableIn(pod, minReady, now) == 0
}

func isHealthy(pod *v1.Pod) bool { return isRunningAndReady(pod) && !isTerminating(pod) }
