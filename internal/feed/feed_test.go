package feed

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// log records deliveries as "add ns/name ip", "update ns/name old→new" and
// "delete ns/name old".
type log struct {
	mu  sync.Mutex
	got []string
}

func (l *log) update(prev, cur any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ip := func(o any) string { s := o.(*corev1.Service); return s.Spec.ClusterIP }
	name := func(o any) string { s := o.(*corev1.Service); return s.Namespace + "/" + s.Name }
	switch {
	case prev == nil:
		l.got = append(l.got, fmt.Sprintf("add %s %s", name(cur), ip(cur)))
	case cur == nil:
		l.got = append(l.got, fmt.Sprintf("delete %s %s", name(prev), ip(prev)))
	default:
		l.got = append(l.got, fmt.Sprintf("update %s %s→%s", name(cur), ip(prev), ip(cur)))
	}
}

func (l *log) waitFor(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.mu.Lock()
		n := len(l.got)
		l.mu.Unlock()
		if n >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	l.mu.Lock()
	got := l.got
	l.got = nil
	l.mu.Unlock()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %q, want %q", got, want)
	}
}

func service(ns, name, ip string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{ClusterIP: ip}}
}

// newServiceFeed keeps each service's ClusterIP, so the rebuilt previous
// versions show it.
func newServiceFeed(client *fake.Clientset) *Reflected[string] {
	c := client.CoreV1().Services(metav1.NamespaceAll)
	return NewReflected(ListWatch(client, c.List, c.Watch), &corev1.Service{},
		func(obj any) string { return obj.(*corev1.Service).Spec.ClusterIP },
		func(n Name, ip string) any { return service(n.Namespace, n.Name, ip) })
}

// TestReflected: every subscriber gets the first list, then each add,
// update and delete, with previous versions rebuilt from what was kept.
func TestReflected(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset(service("default", "kubernetes", "10.0.0.1"), service("prod", "db", "10.0.0.7"))
	r := newServiceFeed(client)
	a, b := &log{}, &log{}
	var synced []func() bool
	for _, l := range []*log{a, b} {
		hs, err := r.Subscribe(l.update)
		if err != nil {
			t.Fatal(err)
		}
		synced = append(synced, hs)
	}
	r.Start(ctx)
	if _, err := r.Subscribe(a.update); err == nil {
		t.Error("subscribed after start")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !synced[0]() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !synced[0]() || !synced[1]() {
		t.Fatal("not synced after the first list")
	}
	for _, l := range []*log{a, b} {
		l.waitFor(t, "add default/kubernetes 10.0.0.1", "add prod/db 10.0.0.7")
	}
	svcs := client.CoreV1().Services("prod")
	if _, err := svcs.Create(ctx, service("prod", "cache", "10.0.0.8"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	a.waitFor(t, "add prod/cache 10.0.0.8")
	if _, err := svcs.Update(ctx, service("prod", "cache", "10.0.0.9"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	a.waitFor(t, "update prod/cache 10.0.0.8→10.0.0.9")
	if err := svcs.Delete(ctx, "cache", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	a.waitFor(t, "delete prod/cache 10.0.0.9")
	b.waitFor(t, "add prod/cache 10.0.0.8", "delete prod/cache 10.0.0.9", "update prod/cache 10.0.0.8→10.0.0.9")
	if n := r.Len(); n != 2 {
		t.Errorf("%d names kept, want 2", n)
	}
}

// TestRelist: a relist updates what it lists and deletes what it lacks.
func TestRelist(t *testing.T) {
	r := newServiceFeed(fake.NewClientset())
	l := &log{}
	if _, err := r.Subscribe(l.update); err != nil {
		t.Fatal(err)
	}
	st := (*store[string])(r)
	if err := st.Replace([]any{service("a", "x", "10.0.0.1"), service("a", "y", "10.0.0.2")}, "1"); err != nil {
		t.Fatal(err)
	}
	if !r.HasSynced() {
		t.Error("not synced after the first list")
	}
	l.waitFor(t, "add a/x 10.0.0.1", "add a/y 10.0.0.2")
	if err := st.Replace([]any{service("a", "y", "10.0.0.4")}, "2"); err != nil {
		t.Fatal(err)
	}
	l.waitFor(t, "delete a/x 10.0.0.1", "update a/y 10.0.0.2→10.0.0.4")
	if err := st.Delete(service("a", "y", "10.0.0.4")); err != nil {
		t.Fatal(err)
	}
	l.waitFor(t, "delete a/y 10.0.0.4")
	if r.Len() != 0 {
		t.Errorf("%d names left", r.Len())
	}
}
