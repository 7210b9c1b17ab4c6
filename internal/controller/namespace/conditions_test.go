package namespace

import (
	"errors"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestProgressConditions(t *testing.T) {
	type want struct {
		status  v1.ConditionStatus
		reason  string
		message string
	}
	tests := []struct {
		name  string
		p     Progress
		empty bool
		want  map[v1.NamespaceConditionType]want
	}{
		{
			name:  "all gone",
			p:     Progress{},
			empty: true,
			want: map[v1.NamespaceConditionType]want{
				v1.NamespaceDeletionDiscoveryFailure: {v1.ConditionFalse, "ResourcesDiscovered", "All resources successfully discovered"},
				v1.NamespaceDeletionGVParsingFailure: {v1.ConditionFalse, "ParsedGroupVersions", "All legacy kube types successfully parsed"},
				v1.NamespaceDeletionContentFailure:   {v1.ConditionFalse, "ContentDeleted", "All content successfully deleted, may be waiting on finalization"},
				v1.NamespaceContentRemaining:         {v1.ConditionFalse, "ContentRemoved", "All content successfully removed"},
				v1.NamespaceFinalizersRemaining:      {v1.ConditionFalse, "ContentHasNoFinalizers", "All content-preserving finalizers finished"},
			},
		},
		{
			name: "content held by finalizers",
			p: Progress{
				Remaining:  map[schema.GroupResource]int{{Resource: "configmaps"}: 2, {Group: "apps", Resource: "deployments"}: 1},
				Finalizers: map[string]int{"example.com/hold": 2, "example.com/other": 1},
			},
			want: map[v1.NamespaceConditionType]want{
				v1.NamespaceContentRemaining: {v1.ConditionTrue, "SomeResourcesRemain",
					"Some resources are remaining: configmaps. has 2 resource instances, deployments.apps has 1 resource instances"},
				v1.NamespaceFinalizersRemaining: {v1.ConditionTrue, "SomeFinalizersRemain",
					"Some content in the namespace has finalizers remaining: example.com/hold in 2 resource instances, example.com/other in 1 resource instances"},
				v1.NamespaceDeletionContentFailure: {v1.ConditionFalse, "ContentDeleted", "All content successfully deleted, may be waiting on finalization"},
			},
		},
		{
			name: "discovery and deletion failures",
			p: Progress{
				DiscoveryFailures: map[schema.GroupVersion]error{{Group: "metrics.k8s.io", Version: "v1beta1"}: errors.New("the server is currently unable to handle the request")},
				DeleteFailures:    []error{errors.New("delete collection of widgets.example.com in ns: forbidden")},
			},
			want: map[v1.NamespaceConditionType]want{
				v1.NamespaceDeletionDiscoveryFailure: {v1.ConditionTrue, "DiscoveryFailed",
					"Discovery failed for some groups, 1 failing: metrics.k8s.io/v1beta1: the server is currently unable to handle the request"},
				v1.NamespaceDeletionContentFailure: {v1.ConditionTrue, "ContentDeletionFailed",
					"Failed to delete all resource types, 1 remaining: delete collection of widgets.example.com in ns: forbidden"},
				v1.NamespaceContentRemaining: {v1.ConditionFalse, "ContentRemoved", "All content successfully removed"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Empty(); got != tt.empty {
				t.Errorf("Empty() = %v, want %v", got, tt.empty)
			}
			conds := tt.p.Conditions()
			if len(conds) != 5 {
				t.Fatalf("got %d conditions, want all 5", len(conds))
			}
			for _, c := range conds {
				w, ok := tt.want[c.Type]
				if !ok {
					continue
				}
				if c.Status != w.status || c.Reason != w.reason || c.Message != w.message {
					t.Errorf("%s = %s/%s/%q, want %s/%s/%q", c.Type, c.Status, c.Reason, c.Message, w.status, w.reason, w.message)
				}
			}
		})
	}
}

func TestMergeConditions(t *testing.T) {
	t0 := metav1.NewTime(time.Unix(1000, 0))
	t1 := metav1.NewTime(time.Unix(2000, 0))
	remaining := Progress{Remaining: map[schema.GroupResource]int{{Resource: "pods"}: 1}}.Conditions()
	first, changed := mergeConditions(nil, remaining, t0)
	if !changed || len(first) != 5 {
		t.Fatalf("first merge: changed=%v len=%d", changed, len(first))
	}
	if _, changed := mergeConditions(first, remaining, t1); changed {
		t.Fatalf("identical conditions reported as a change")
	}
	// Fewer pods: message changes, status does not, time stays.
	fewer := Progress{Remaining: map[schema.GroupResource]int{{Resource: "pods"}: 3}}.Conditions()
	second, changed := mergeConditions(first, fewer, t1)
	if !changed {
		t.Fatalf("message change not reported")
	}
	for _, c := range second {
		if c.LastTransitionTime != t0 {
			t.Errorf("%s transition time moved to %v without a status change", c.Type, c.LastTransitionTime)
		}
	}
	// Content gone: ContentRemaining flips and gets the new time.
	third, _ := mergeConditions(second, Progress{}.Conditions(), t1)
	for _, c := range third {
		want := t0
		if c.Type == v1.NamespaceContentRemaining {
			want = t1
		}
		if c.LastTransitionTime != want {
			t.Errorf("%s transition time = %v, want %v", c.Type, c.LastTransitionTime, want)
		}
	}
}
