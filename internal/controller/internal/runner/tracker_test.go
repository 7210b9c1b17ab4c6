package runner

import (
	"testing"
	"time"
)

func TestTracker(t *testing.T) {
	now := time.Unix(0, 0)
	tr := NewTracker()
	tr.now = func() time.Time { return now }

	tr.Created("ns/web", "web-1")
	tr.Updated("ns/web", "web-2", "5", "6")
	tr.Deleted("ns/web", "web-3")
	tr.Updated("ns/web", "web-4", "7", "7") // no visible change: nothing to wait for

	steps := []struct {
		name   string
		cached map[string]string
		stale  bool
	}{
		{"nothing observed yet", map[string]string{"web-2": "5", "web-3": "1"}, true},
		{"create and update observed, delete not", map[string]string{"web-1": "1", "web-2": "6", "web-3": "1"}, true},
		{"delete observed too", map[string]string{"web-1": "1", "web-2": "6"}, false},
	}
	for _, s := range steps {
		if got := tr.Stale("ns/web", s.cached); got != s.stale {
			t.Errorf("%s: stale = %v, want %v", s.name, got, s.stale)
		}
	}

	tr.Created("ns/db", "db-1")
	now = now.Add(31 * time.Second)
	if tr.Stale("ns/db", nil) {
		t.Errorf("expired expectation still blocks")
	}
}
