package agent

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestReportedProbeResults(t *testing.T) {
	start := time.Date(2026, 12, 1, 10, 0, 0, 700_000_000, time.UTC)
	pod := &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
		Name: "app", Ready: true, Started: ptr.To(true),
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(start.Truncate(time.Second))}},
	}}}}
	for _, tc := range []struct {
		name           string
		container      string
		startedAt      time.Time
		ready, started bool
	}{
		{"the same run, reported with whole seconds", "app", start, true, true},
		{"a later run (restarted since)", "app", start.Add(5 * time.Second), false, false},
		{"another container", "other", start, false, false},
	} {
		ready, started := reportedProbeResults(pod, tc.container, tc.startedAt)
		if ready != tc.ready || started != tc.started {
			t.Errorf("%s: ready=%v started=%v, want %v %v", tc.name, ready, started, tc.ready, tc.started)
		}
	}
}
