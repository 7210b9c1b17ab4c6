package ctltest

import (
	"testing"
	"time"
)

// pollInterval is short enough that a test does not wait noticeably longer
// than the controller needs, and long enough not to load the API server.
const pollInterval = 25 * time.Millisecond

// Eventually polls cond until it holds and returns when it first held; it
// fails the test after timeout with what and cond's last explanation.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, last = cond(); ok {
			return time.Now()
		}
		time.Sleep(pollInterval)
	}
	t.Fatalf("timed out after %v waiting for %s; last: %s", timeout, what, last)
	return time.Time{}
}

// Never fails the test if cond holds at any poll within d.
func Never(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			t.Fatalf("unexpected: %s", what)
		}
		time.Sleep(2 * pollInterval)
	}
}
