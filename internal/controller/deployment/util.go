package deployment

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/utils/dump"
)

// Annotations the controller reads and writes. kubectl's rollout commands
// read the same keys, so they must not change.
const (
	RevisionAnnotation        = "deployment.kubernetes.io/revision"
	RevisionHistoryAnnotation = "deployment.kubernetes.io/revision-history"
	DesiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas"
	MaxReplicasAnnotation     = "deployment.kubernetes.io/max-replicas"
	ChangeCauseAnnotation     = "kubernetes.io/change-cause"

	lastAppliedAnnotation   = "kubectl.kubernetes.io/last-applied-configuration"
	deprecatedRollbackTo    = "deprecated.deployment.rollback.to"
	maxRevisionHistoryChars = 2000
)

// notCopied lists Deployment annotations that describe the Deployment itself
// (or are per-ReplicaSet bookkeeping) and so never travel to a ReplicaSet.
var notCopied = map[string]bool{
	lastAppliedAnnotation:     true,
	RevisionAnnotation:        true,
	RevisionHistoryAnnotation: true,
	DesiredReplicasAnnotation: true,
	MaxReplicasAnnotation:     true,
	deprecatedRollbackTo:      true,
}

// TemplateHash returns the decimal FNV-32a hash of a pod template, salted with
// collisionCount when set, used in the ReplicaSet name and the
// pod-template-hash label. The template is printed with the dump
// configuration Kubernetes uses for hashing (sorted keys, no methods), so
// equal templates hash equally across processes.
func TemplateHash(t *v1.PodTemplateSpec, collisionCount *int32) string {
	h := fnv.New32a()
	_, _ = fmt.Fprintf(h, "%v", dump.ForHash(*t))
	if collisionCount != nil {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint32(b, uint32(*collisionCount))
		_, _ = h.Write(b)
	}
	return strconv.FormatUint(uint64(h.Sum32()), 10)
}

// equalIgnoreHash compares templates without the pod-template-hash label,
// which the Deployment's own template never carries.
func equalIgnoreHash(a, b *v1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	delete(b.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	return apiequality.Semantic.DeepEqual(a, b)
}

func replicas(rs *appsv1.ReplicaSet) int32 {
	if rs == nil || rs.Spec.Replicas == nil {
		return 0
	}
	return *rs.Spec.Replicas
}

func desired(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// sum adds f over the non-nil ReplicaSets.
func sum(rss []*appsv1.ReplicaSet, f func(*appsv1.ReplicaSet) int32) int32 {
	var n int32
	for _, rs := range rss {
		if rs != nil {
			n += f(rs)
		}
	}
	return n
}

func statusReplicas(rs *appsv1.ReplicaSet) int32 { return rs.Status.Replicas }
func readyReplicas(rs *appsv1.ReplicaSet) int32  { return rs.Status.ReadyReplicas }
func availReplicas(rs *appsv1.ReplicaSet) int32  { return rs.Status.AvailableReplicas }

// active drops nil and zero-sized ReplicaSets.
func active(rss []*appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	var out []*appsv1.ReplicaSet
	for _, rs := range rss {
		if rs != nil && replicas(rs) > 0 {
			out = append(out, rs)
		}
	}
	return out
}

// withNew appends newRS to a copy of old when there is one.
func withNew(old []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	out := append([]*appsv1.ReplicaSet(nil), old...)
	if newRS != nil {
		out = append(out, newRS)
	}
	return out
}

func olderThan(a, b *appsv1.ReplicaSet) bool {
	if a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.Name < b.Name
	}
	return a.CreationTimestamp.Before(&b.CreationTimestamp)
}

// sortOldestFirst sorts in place by creation time, then name.
func sortOldestFirst(rss []*appsv1.ReplicaSet) {
	sort.SliceStable(rss, func(i, j int) bool { return olderThan(rss[i], rss[j]) })
}

// sortForScale orders ReplicaSets for proportional scaling: largest first,
// so leftovers land on the biggest one; among equals the newer first when
// growing and the older first when shrinking.
func sortForScale(rss []*appsv1.ReplicaSet, up bool) {
	sort.SliceStable(rss, func(i, j int) bool {
		a, b := rss[i], rss[j]
		if replicas(a) != replicas(b) {
			return replicas(a) > replicas(b)
		}
		if up {
			return olderThan(b, a)
		}
		return olderThan(a, b)
	})
}

// revision is the ReplicaSet's revision annotation, 0 when absent or bad.
func revision(rs *appsv1.ReplicaSet) int64 {
	v, err := strconv.ParseInt(rs.Annotations[RevisionAnnotation], 10, 64)
	if err != nil {
		return 0
	}
	return v
}

func maxRevision(rss []*appsv1.ReplicaSet) int64 {
	var m int64
	for _, rs := range rss {
		if r := revision(rs); r > m {
			m = r
		}
	}
	return m
}

func intAnnotation(rs *appsv1.ReplicaSet, key string) (int32, bool) {
	v, ok := rs.Annotations[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(n), true
}

// findNewRS returns the ReplicaSet whose template equals the Deployment's.
// Should there be several (possible after hash algorithm changes), the
// oldest wins so the choice is stable.
func findNewRS(d *appsv1.Deployment, rss []*appsv1.ReplicaSet) *appsv1.ReplicaSet {
	sorted := append([]*appsv1.ReplicaSet(nil), rss...)
	sortOldestFirst(sorted)
	for _, rs := range sorted {
		if equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
			return rs
		}
	}
	return nil
}

// oldRSs returns every ReplicaSet but newRS.
func oldRSs(rss []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	var out []*appsv1.ReplicaSet
	for _, rs := range rss {
		if newRS != nil && rs.UID == newRS.UID {
			continue
		}
		out = append(out, rs)
	}
	return out
}
