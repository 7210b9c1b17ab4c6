package rootcacert

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

const ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

func TestPublishedInEveryNamespace(t *testing.T) {
	ns := func(name string, phase v1.NamespacePhase) *v1.Namespace {
		return &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: v1.NamespaceStatus{Phase: phase}}
	}
	client := fake.NewClientset(ns("a", v1.NamespaceActive), ns("gone", v1.NamespaceTerminating))
	f := informers.NewSharedInformerFactory(client, 0)
	c, err := New(client, f, []byte(ca))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(client, f, nil); err == nil {
		t.Error("New without a CA succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.Start(ctx.Done())
	go c.Run(ctx, 1)

	published := func(ns string) bool {
		cm, err := client.CoreV1().ConfigMaps(ns).Get(ctx, Name, metav1.GetOptions{})
		return err == nil && cm.Data[Key] == ca && len(cm.Data) == 1
	}
	wait := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out: %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	wait("published in a", func() bool { return published("a") })
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns("b", v1.NamespaceActive), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("published in the new namespace b", func() bool { return published("b") })

	cm, _ := client.CoreV1().ConfigMaps("b").Get(ctx, Name, metav1.GetOptions{})
	cm.Data = map[string]string{Key: "tampered", "extra": "x"}
	if _, err := client.CoreV1().ConfigMaps("b").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("an edited bundle put back", func() bool { return published("b") })
	if err := client.CoreV1().ConfigMaps("b").Delete(ctx, Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("a deleted bundle put back", func() bool { return published("b") })
	time.Sleep(100 * time.Millisecond)
	if published("gone") {
		t.Error("published in a terminating namespace")
	}
}
