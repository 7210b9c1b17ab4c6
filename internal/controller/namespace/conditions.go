package namespace

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Condition reasons and messages, spelled as upstream spells them so that
// tooling that reads them keeps working.
const (
	reasonDiscoveryFailed     = "DiscoveryFailed"
	reasonDiscovered          = "ResourcesDiscovered"
	reasonParsingFailed       = "ParsingFailed"
	reasonParsed              = "ParsedGroupVersions"
	reasonContentFailed       = "ContentDeletionFailed"
	reasonContentDeleted      = "ContentDeleted"
	reasonResourcesRemain     = "SomeResourcesRemain"
	reasonContentRemoved      = "ContentRemoved"
	reasonFinalizersRemain    = "SomeFinalizersRemain"
	reasonNoFinalizers        = "ContentHasNoFinalizers"
	messageDiscovered         = "All resources successfully discovered"
	messageParsed             = "All legacy kube types successfully parsed"
	messageContentDeleted     = "All content successfully deleted, may be waiting on finalization"
	messageContentRemoved     = "All content successfully removed"
	messageFinalizersFinished = "All content-preserving finalizers finished"
)

// Progress is what one deletion pass found; it alone decides the
// namespace's deletion conditions.
type Progress struct {
	// DiscoveryFailures names the groups discovery could not list.
	DiscoveryFailures map[schema.GroupVersion]error
	// ParseFailures are discovered group versions that did not parse.
	ParseFailures []error
	// DeleteFailures are per-resource deletion errors.
	DeleteFailures []error
	// Remaining counts objects still present per resource.
	Remaining map[schema.GroupResource]int
	// Finalizers counts remaining objects per finalizer they carry.
	Finalizers map[string]int
}

// Empty reports whether the pass found nothing left and nothing failed,
// which is when the namespace may be finalized.
func (p Progress) Empty() bool {
	return len(p.DiscoveryFailures) == 0 && len(p.ParseFailures) == 0 && len(p.DeleteFailures) == 0 && len(p.Remaining) == 0
}

// Conditions returns the five deletion conditions for p. Each is present
// either way (True for a problem, False once it is resolved), as upstream
// does, so `kubectl describe ns` always shows where deletion stands.
func (p Progress) Conditions() []v1.NamespaceCondition {
	cond := func(t v1.NamespaceConditionType, bad bool, badReason, badMsg, okReason, okMsg string) v1.NamespaceCondition {
		if bad {
			return v1.NamespaceCondition{Type: t, Status: v1.ConditionTrue, Reason: badReason, Message: badMsg}
		}
		return v1.NamespaceCondition{Type: t, Status: v1.ConditionFalse, Reason: okReason, Message: okMsg}
	}
	var discovery []string
	for gv, err := range p.DiscoveryFailures {
		discovery = append(discovery, fmt.Sprintf("%s: %v", gv, err))
	}
	sort.Strings(discovery)
	var remaining []string
	for gr, n := range p.Remaining {
		remaining = append(remaining, fmt.Sprintf("%s.%s has %d resource instances", gr.Resource, gr.Group, n))
	}
	sort.Strings(remaining)
	var finalizers []string
	for f, n := range p.Finalizers {
		finalizers = append(finalizers, fmt.Sprintf("%s in %d resource instances", f, n))
	}
	sort.Strings(finalizers)
	return []v1.NamespaceCondition{
		cond(v1.NamespaceDeletionDiscoveryFailure, len(discovery) > 0, reasonDiscoveryFailed,
			fmt.Sprintf("Discovery failed for some groups, %d failing: %s", len(discovery), strings.Join(discovery, ", ")),
			reasonDiscovered, messageDiscovered),
		cond(v1.NamespaceDeletionGVParsingFailure, len(p.ParseFailures) > 0, reasonParsingFailed,
			fmt.Sprintf("Failed to parse some group versions, %d failing: %s", len(p.ParseFailures), joinErrors(p.ParseFailures)),
			reasonParsed, messageParsed),
		cond(v1.NamespaceDeletionContentFailure, len(p.DeleteFailures) > 0, reasonContentFailed,
			fmt.Sprintf("Failed to delete all resource types, %d remaining: %s", len(p.DeleteFailures), joinErrors(p.DeleteFailures)),
			reasonContentDeleted, messageContentDeleted),
		cond(v1.NamespaceContentRemaining, len(remaining) > 0, reasonResourcesRemain,
			"Some resources are remaining: "+strings.Join(remaining, ", "),
			reasonContentRemoved, messageContentRemoved),
		cond(v1.NamespaceFinalizersRemaining, len(finalizers) > 0, reasonFinalizersRemain,
			"Some content in the namespace has finalizers remaining: "+strings.Join(finalizers, ", "),
			reasonNoFinalizers, messageFinalizersFinished),
	}
}

func joinErrors(errs []error) string {
	s := make([]string, len(errs))
	for i, e := range errs {
		s[i] = e.Error()
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

// mergeConditions puts want into have. A condition keeps its transition
// time while its status stays; the result says whether anything changed,
// so an unchanged pass writes nothing.
func mergeConditions(have []v1.NamespaceCondition, want []v1.NamespaceCondition, now metav1.Time) ([]v1.NamespaceCondition, bool) {
	out := slices.Clone(have)
	changed := false
	for _, w := range want {
		i := slices.IndexFunc(out, func(c v1.NamespaceCondition) bool { return c.Type == w.Type })
		if i < 0 {
			w.LastTransitionTime = now
			out = append(out, w)
			changed = true
			continue
		}
		cur := out[i]
		if cur.Status == w.Status && cur.Reason == w.Reason && cur.Message == w.Message {
			continue
		}
		w.LastTransitionTime = cur.LastTransitionTime
		if cur.Status != w.Status || w.LastTransitionTime.IsZero() {
			w.LastTransitionTime = now
		}
		out[i] = w
		changed = true
	}
	return out, changed
}
