package statefulset

import (
	"encoding/json"
	"fmt"

	"github.com/portal-net/portal/internal/controller/internal/history"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
)

// revisionData is what a revision stores: a strategic merge patch that
// replaces the set's pod template. kubectl rollout undo applies exactly this
// patch to the set, and compares it bytewise with the patch it computes from
// the live set to detect a no-op, so the encoding mirrors kubectl's: the
// template as JSON with "$patch":"replace", keys sorted.
func revisionData(set *appsv1.StatefulSet) ([]byte, error) {
	raw, err := json.Marshal(set.Spec.Template)
	if err != nil {
		return nil, fmt.Errorf("encode template of %s/%s: %w", set.Namespace, set.Name, err)
	}
	var template map[string]interface{}
	if err := json.Unmarshal(raw, &template); err != nil {
		return nil, fmt.Errorf("decode template of %s/%s: %w", set.Namespace, set.Name, err)
	}
	template["$patch"] = "replace"
	return json.Marshal(map[string]interface{}{"spec": map[string]interface{}{"template": template}})
}

// templateOf reads the pod template back out of a revision. The "$patch"
// directive is simply an unknown field to the decoder.
func templateOf(rev *appsv1.ControllerRevision) (*v1.PodTemplateSpec, error) {
	var d struct {
		Spec struct {
			Template v1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(rev.Data.Raw, &d); err != nil {
		return nil, fmt.Errorf("decode controllerrevision %s/%s: %w", rev.Namespace, rev.Name, err)
	}
	return &d.Spec.Template, nil
}

// newRevision builds the revision for set's current template. Like
// upstream, the set's annotations are copied so kubectl rollout history
// shows kubernetes.io/change-cause per revision.
func newRevision(set *appsv1.StatefulSet, number int64, collisionCount *int32) (*appsv1.ControllerRevision, error) {
	data, err := revisionData(set)
	if err != nil {
		return nil, err
	}
	rev := history.New(set, controllerKind, set.Spec.Template.Labels, data, number, collisionCount)
	if len(set.Annotations) > 0 {
		rev.Annotations = make(map[string]string, len(set.Annotations))
		for k, v := range set.Annotations {
			rev.Annotations[k] = v
		}
	}
	return rev, nil
}

// revisionChoice says how to obtain the update revision.
type revisionChoice int

const (
	// useLatest: the newest revision already holds the template.
	useLatest revisionChoice = iota
	// renumber: an older revision holds it (a rollback); it becomes newest.
	renumber
	// create: no revision holds it yet.
	create
)

// chooseUpdateRevision decides, from the set's revisions sorted oldest
// first and the revision its template would produce, which revision pods
// should move to.
func chooseUpdateRevision(sorted []*appsv1.ControllerRevision, want *appsv1.ControllerRevision) (revisionChoice, *appsv1.ControllerRevision) {
	equal := history.FindEqual(sorted, want)
	switch {
	case len(equal) == 0:
		return create, want
	case equal[len(equal)-1] == sorted[len(sorted)-1]:
		return useLatest, sorted[len(sorted)-1]
	default:
		return renumber, equal[len(equal)-1]
	}
}

// findCurrent returns the revision named by status.currentRevision, or
// update when there is none yet (a new set starts at its first revision).
func findCurrent(set *appsv1.StatefulSet, revs []*appsv1.ControllerRevision, update *appsv1.ControllerRevision) *appsv1.ControllerRevision {
	for _, r := range revs {
		if r.Name == set.Status.CurrentRevision {
			return r
		}
	}
	return update
}
