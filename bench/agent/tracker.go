package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	watchtools "k8s.io/client-go/tools/watch"
)

// milestone is a point in a pod's life that a watch event shows.
type milestone int

const (
	running milestone = iota // status.phase Running
	ready                    // condition Ready True
	gone                     // deleted from the API
	milestones
)

func (m milestone) String() string { return [...]string{"Running", "Ready", "gone"}[m] }

// podSeen is when the watch first showed each milestone of one pod.
type podSeen struct {
	at   [milestones]time.Time
	done [milestones]chan struct{}
}

// tracker timestamps, client-side, the first watch event showing each
// milestone of each benchmark pod, so that latencies are measured the way
// a user sees them rather than from timestamps the agent writes.
type tracker struct {
	mu   sync.Mutex
	pods map[string]*podSeen
}

func newTracker() *tracker { return &tracker{pods: map[string]*podSeen{}} }

// startTracker watches the pods of ns matching selector until ctx ends.
func startTracker(ctx context.Context, kc kubernetes.Interface, ns, selector string) (*tracker, error) {
	l, err := kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	t := newTracker()
	now := time.Now()
	for i := range l.Items {
		t.observe(watch.Event{Type: watch.Added, Object: &l.Items[i]}, now)
	}
	w, err := watchtools.NewRetryWatcherWithContext(ctx, l.ResourceVersion, podWatcher{kc, ns, selector})
	if err != nil {
		return nil, err
	}
	go func() {
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					return
				}
				t.observe(ev, time.Now())
			}
		}
	}()
	return t, nil
}

// podWatcher is the watch the RetryWatcher restarts after a disconnect.
type podWatcher struct {
	kc           kubernetes.Interface
	ns, selector string
}

func (p podWatcher) WatchWithContext(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	o.LabelSelector = p.selector
	return p.kc.CoreV1().Pods(p.ns).Watch(ctx, o)
}

func (t *tracker) entry(name string) *podSeen {
	p := t.pods[name]
	if p == nil {
		p = &podSeen{}
		for m := range p.done {
			p.done[m] = make(chan struct{})
		}
		t.pods[name] = p
	}
	return p
}

// observe records the milestones ev shows, stamped at.
func (t *tracker) observe(ev watch.Event, at time.Time) {
	pod, ok := ev.Object.(*corev1.Pod)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.entry(pod.Name)
	mark := func(m milestone) {
		if p.at[m].IsZero() {
			p.at[m] = at
			close(p.done[m])
		}
	}
	if ev.Type == watch.Deleted {
		mark(gone)
		return
	}
	if pod.Status.Phase == corev1.PodRunning {
		mark(running)
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			mark(ready)
		}
	}
}

// wait returns when the watch showed milestone m of pod name, waiting at
// most limit.
func (t *tracker) wait(ctx context.Context, name string, m milestone, limit time.Duration) (time.Time, error) {
	t.mu.Lock()
	p := t.entry(name)
	t.mu.Unlock()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-p.done[m]:
		t.mu.Lock()
		defer t.mu.Unlock()
		return p.at[m], nil
	case <-timer.C:
		return time.Time{}, fmt.Errorf("pod %s not %s within %s", name, m, limit)
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
}

// forget drops a pod whose milestones are all used, so that a long run of
// cycles holds no memory for them.
func (t *tracker) forget(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.pods, name)
}
