package daemonset

import (
	"strconv"

	"github.com/portal-net/portal/internal/scheduler/fit"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TemplateGenerationLabel is the deprecated pod label upstream still sets
// with the DaemonSet generation that created the pod.
const TemplateGenerationLabel = "pod-template-generation"

var controllerKind = appsv1.SchemeGroupVersion.WithKind("DaemonSet")

// ShouldRun judges node for ds: run says a daemon pod should be placed
// there; keep says an existing one may stay. They differ for a NoSchedule
// taint the pods do not tolerate: nothing new lands, nothing is evicted.
func ShouldRun(ds *appsv1.DaemonSet, node *v1.Node) (run, keep bool) {
	spec := &ds.Spec.Template.Spec
	if spec.NodeName != "" && spec.NodeName != node.Name {
		return false, false
	}
	if !fit.MatchesNodeAffinity(spec.NodeSelector, spec.Affinity, node) {
		return false, false
	}
	tolerations := withDefaultTolerations(spec.Tolerations, spec.HostNetwork)
	if _, found := fit.UntoleratedTaint(node.Spec.Taints, tolerations, v1.TaintEffectNoExecute); found {
		return false, false
	}
	if _, found := fit.UntoleratedTaint(node.Spec.Taints, tolerations, v1.TaintEffectNoSchedule); found {
		return false, true
	}
	return true, true
}

// withDefaultTolerations adds what every daemon pod tolerates: it must
// survive node trouble (not-ready and unreachable without eviction delay),
// pressure, cordoning, and, for host-network pods that often are the
// network, a node whose network is not set up yet.
func withDefaultTolerations(ts []v1.Toleration, hostNetwork bool) []v1.Toleration {
	out := append([]v1.Toleration(nil), ts...)
	add := func(key string, effect v1.TaintEffect) {
		for _, t := range out {
			if t.Key == key && t.Effect == effect {
				return
			}
		}
		out = append(out, v1.Toleration{Key: key, Operator: v1.TolerationOpExists, Effect: effect})
	}
	add(v1.TaintNodeNotReady, v1.TaintEffectNoExecute)
	add(v1.TaintNodeUnreachable, v1.TaintEffectNoExecute)
	add(v1.TaintNodeDiskPressure, v1.TaintEffectNoSchedule)
	add(v1.TaintNodeMemoryPressure, v1.TaintEffectNoSchedule)
	add(v1.TaintNodePIDPressure, v1.TaintEffectNoSchedule)
	add(v1.TaintNodeUnschedulable, v1.TaintEffectNoSchedule)
	if hostNetwork {
		add(v1.TaintNodeNetworkUnavailable, v1.TaintEffectNoSchedule)
	}
	return out
}

// NewPod is the daemon pod for node at template revision hash. Its
// required node affinity names only the node, so the scheduler can place it
// nowhere else; the template's preferred terms are kept.
func NewPod(ds *appsv1.DaemonSet, hash, node string) *v1.Pod {
	t := ds.Spec.Template.DeepCopy()
	labels := make(map[string]string, len(t.Labels)+2)
	for k, v := range t.Labels {
		labels[k] = v
	}
	labels[appsv1.ControllerRevisionHashLabelKey] = hash
	labels[TemplateGenerationLabel] = strconv.FormatInt(ds.Generation, 10)
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    ds.Name + "-",
			Namespace:       ds.Namespace,
			Labels:          labels,
			Annotations:     t.Annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ds, controllerKind)},
		},
		Spec: t.Spec,
	}
	pod.Spec.Tolerations = withDefaultTolerations(pod.Spec.Tolerations, pod.Spec.HostNetwork)
	if pod.Spec.Affinity == nil {
		pod.Spec.Affinity = &v1.Affinity{}
	}
	if pod.Spec.Affinity.NodeAffinity == nil {
		pod.Spec.Affinity.NodeAffinity = &v1.NodeAffinity{}
	}
	pod.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &v1.NodeSelector{
		NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchFields: []v1.NodeSelectorRequirement{{
			Key: metav1.ObjectNameField, Operator: v1.NodeSelectorOpIn, Values: []string{node},
		}}}},
	}
	return pod
}

// TargetNode is the node a daemon pod belongs to: where it is bound, or,
// while it waits for the scheduler, the node its affinity names.
func TargetNode(pod *v1.Pod) string {
	if pod.Spec.NodeName != "" {
		return pod.Spec.NodeName
	}
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return ""
	}
	for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, f := range term.MatchFields {
			if f.Key == metav1.ObjectNameField && f.Operator == v1.NodeSelectorOpIn && len(f.Values) == 1 {
				return f.Values[0]
			}
		}
	}
	return ""
}
