package serviceaccount

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

func TestDefaultAccountInEveryNamespace(t *testing.T) {
	ns := func(name string, phase v1.NamespacePhase) *v1.Namespace {
		return &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: v1.NamespaceStatus{Phase: phase}}
	}
	client := fake.NewClientset(ns("a", v1.NamespaceActive), ns("gone", v1.NamespaceTerminating),
		&v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "builder"}})
	f := informers.NewSharedInformerFactory(client, 0)
	c := New(client, f)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.Start(ctx.Done())
	go c.Run(ctx, 1)

	has := func(ns string) bool {
		_, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, DefaultName, metav1.GetOptions{})
		return err == nil
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
	wait("default account in a", func() bool { return has("a") })
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns("b", v1.NamespaceActive), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("default account in the new namespace b", func() bool { return has("b") })
	if err := client.CoreV1().ServiceAccounts("b").Delete(ctx, DefaultName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("default account of b back after its deletion", func() bool { return has("b") })
	time.Sleep(100 * time.Millisecond)
	if has("gone") {
		t.Error("an account was created in a terminating namespace")
	}
	if _, err := client.CoreV1().ServiceAccounts("a").Get(ctx, "builder", metav1.GetOptions{}); err != nil {
		t.Errorf("other accounts touched: %v", err)
	}
}
