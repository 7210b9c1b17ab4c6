package topologykeys_test

import (
	"context"
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/portal-net/portal/internal/apitest"
	"github.com/portal-net/portal/internal/proxy/topologykeys"
)

// A service written with spec.topologyKeys (the seed's field) reaches the
// informer as a plain v1.Service, and Keys.For gives each version its own
// keys, also in an update handler comparing the old and new objects.
func TestInformerCarriesTopologyKeys(t *testing.T) {
	srv := apitest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	f := informers.NewSharedInformerFactory(srv.Client, 0)
	defer f.Shutdown()
	defer cancel()
	keys, err := topologykeys.Register(f, srv.Config, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := topologykeys.Register(f, srv.Config, 0); err == nil {
		t.Error("second Register: no error, want one (the factory already has the informer)")
	}
	type change struct{ old, new []string }
	changes := make(chan change, 10)
	_, err = f.Core().V1().Services().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) {
			if s := o.(*v1.Service); s.Name == "my-service" {
				changes <- change{nil, keys.For(s)}
			}
		},
		UpdateFunc: func(o, n any) {
			if s := n.(*v1.Service); s.Name == "my-service" {
				changes <- change{keys.For(o.(*v1.Service)), keys.For(s)}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx.Done())

	body := `{"apiVersion":"v1","kind":"Service","metadata":{"name":"my-service","namespace":"default"},
	  "spec":{"selector":{"app":"MyApp"},"ports":[{"protocol":"TCP","port":80,"targetPort":9376}],
	  "topologyKeys":["kubernetes.io/hostname","topology.kubernetes.io/zone","*"]}}`
	res := srv.Client.CoreV1().RESTClient().Post().Namespace("default").Resource("services").
		SetHeader("Content-Type", "application/json").Body([]byte(body)).Do(ctx)
	if err := res.Error(); err != nil {
		t.Fatal(err)
	}
	want := []string{"kubernetes.io/hostname", "topology.kubernetes.io/zone", "*"}
	got := next(t, changes)
	if !slices.Equal(got.new, want) {
		t.Fatalf("added service has keys %q, want %q", got.new, want)
	}

	patch := `{"spec":{"topologyKeys":["*"]}}`
	if _, err := srv.Client.CoreV1().Services("default").Patch(ctx, "my-service", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	got = next(t, changes)
	if !slices.Equal(got.old, want) || !slices.Equal(got.new, []string{"*"}) {
		t.Fatalf("update handler saw keys %q → %q, want %q → [*]", got.old, got.new, want)
	}
}

func next[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatal("no informer event")
	}
	panic("unreachable")
}
