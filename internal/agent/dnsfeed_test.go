package agent

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

// feedLog records what a feed delivered, as "add ns/name <clusterIP>" and
// "delete ns/name".
type feedLog struct {
	mu  sync.Mutex
	got []string
}

func (l *feedLog) update(prev, cur any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case cur != nil:
		if prev != nil {
			l.got = append(l.got, "unexpected prev")
		}
		s := cur.(*corev1.Service)
		l.got = append(l.got, fmt.Sprintf("add %s/%s %s", s.Namespace, s.Name, s.Spec.ClusterIP))
	default:
		s := prev.(*corev1.Service)
		l.got = append(l.got, fmt.Sprintf("delete %s/%s", s.Namespace, s.Name))
	}
}

func (l *feedLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.got
	l.got = nil
	slices.Sort(out)
	return out
}

func (l *feedLog) waitFor(t *testing.T, want ...string) {
	t.Helper()
	var got []string
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		n := len(l.got)
		l.mu.Unlock()
		if n >= len(want) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	got = l.take()
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %q, want %q", got, want)
	}
}

func service(ns, name, ip string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{ClusterIP: ip}}
}

// TestReflectorFeed: --dns-only's reflectors deliver the first list, then
// every add, update and delete, keeping nothing but names.
func TestReflectorFeed(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset(service("default", "kubernetes", "10.0.0.1"), service("prod", "db", "10.0.0.7"))
	log := &feedLog{}
	synced, err := reflectorFeed(ctx, client)(dnsServices, log.update)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !synced() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !synced() {
		t.Fatal("not synced after the first list")
	}
	log.waitFor(t, "add default/kubernetes 10.0.0.1", "add prod/db 10.0.0.7")

	svcs := client.CoreV1().Services("prod")
	if _, err := svcs.Create(ctx, service("prod", "cache", "10.0.0.8"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	log.waitFor(t, "add prod/cache 10.0.0.8")
	if _, err := svcs.Update(ctx, service("prod", "cache", "10.0.0.9"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	log.waitFor(t, "add prod/cache 10.0.0.9")
	if err := svcs.Delete(ctx, "db", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	log.waitFor(t, "delete prod/db")
}

// TestKeyStoreRelist: a relist re-adds what it lists and deletes, by a
// stand-in carrying the name, what it no longer has.
func TestKeyStoreRelist(t *testing.T) {
	log := &feedLog{}
	st := &keyStore{update: log.update, keys: map[keyOf]struct{}{},
		standIn: func(ns, name string) any { return service(ns, name, "") }}
	if err := st.Replace([]any{service("a", "x", "10.0.0.1"), service("a", "y", "10.0.0.2")}, "1"); err != nil {
		t.Fatal(err)
	}
	if !st.synced.Load() {
		t.Error("not synced after Replace")
	}
	log.waitFor(t, "add a/x 10.0.0.1", "add a/y 10.0.0.2")
	if err := st.Add(service("a", "z", "10.0.0.3")); err != nil {
		t.Fatal(err)
	}
	log.take()
	if err := st.Replace([]any{service("a", "y", "10.0.0.4")}, "2"); err != nil {
		t.Fatal(err)
	}
	log.waitFor(t, "add a/y 10.0.0.4", "delete a/x", "delete a/z")
	if err := st.Delete(service("a", "y", "10.0.0.4")); err != nil {
		t.Fatal(err)
	}
	log.waitFor(t, "delete a/y")
	if len(st.keys) != 0 {
		t.Errorf("names left: %v", st.keys)
	}
}
