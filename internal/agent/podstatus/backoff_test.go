package podstatus

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestBackoffSequence(t *testing.T) {
	b := NewBackoff(10*time.Second, 300*time.Second)
	now := t0
	want := []time.Duration{10, 20, 40, 80, 160, 300, 300}
	for i, w := range want {
		got := b.Next("pod/c", now)
		if got != w*time.Second {
			t.Fatalf("failure %d: delay %v, want %v", i+1, got, w*time.Second)
		}
		if in, left := b.InBackoff("pod/c", now.Add(time.Second)); !in || left != got-time.Second {
			t.Fatalf("failure %d: InBackoff = %v, %v", i+1, in, left)
		}
		if in, _ := b.InBackoff("pod/c", now.Add(got)); in {
			t.Fatalf("failure %d: still in back-off after the delay", i+1)
		}
		// The container restarts after the delay and crashes 5s later.
		now = now.Add(got + 5*time.Second)
	}
	if in, _ := b.InBackoff("other", now); in {
		t.Fatal("unknown key in back-off")
	}
}

func TestBackoffResetsAfterLongRun(t *testing.T) {
	b := NewBackoff(10*time.Second, 300*time.Second)
	b.Next("k", t0)
	b.Next("k", t0.Add(15*time.Second))
	// Ran more than ten minutes since the last crash.
	if got := b.Next("k", t0.Add(15*time.Second+11*time.Minute)); got != 10*time.Second {
		t.Fatalf("delay after a long run = %v, want the initial 10s", got)
	}
	b.Next("k", t0.Add(20*time.Minute))
	b.Reset("k")
	if got := b.Next("k", t0.Add(20*time.Minute+time.Second)); got != 10*time.Second {
		t.Fatalf("delay after Reset = %v, want 10s", got)
	}
}

func TestBackoffGC(t *testing.T) {
	b := NewBackoff(10*time.Second, 300*time.Second)
	b.Next("old", t0)
	b.Next("new", t0.Add(9*time.Minute))
	b.GC(t0.Add(11 * time.Minute))
	b.mu.Lock()
	_, old := b.entries["old"]
	_, fresh := b.entries["new"]
	b.mu.Unlock()
	if old || !fresh {
		t.Fatalf("after GC: old kept=%v, new kept=%v", old, fresh)
	}
}

func TestBackoffConcurrent(t *testing.T) {
	b := NewBackoff(time.Second, 8*time.Second)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			key := fmt.Sprint("k", i%2)
			for j := 0; j < 100; j++ {
				now := t0.Add(time.Duration(j) * time.Millisecond)
				b.Next(key, now)
				b.InBackoff(key, now)
				b.GC(now)
			}
		}(i)
	}
	wg.Wait()
	if got := b.Next("k0", t0.Add(time.Second)); got != 8*time.Second {
		t.Fatalf("delay after 400 failures = %v, want the max", got)
	}
}
