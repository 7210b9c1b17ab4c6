package allocator

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/portal-net/portal/internal/allocator/etcdtest"
)

// storeImpls runs a check against both Store implementations, so the fake
// is held to etcd's behaviour.
func storeImpls(t *testing.T, check func(t *testing.T, s Store)) {
	t.Run("mem", func(t *testing.T) { check(t, NewMemStore()) })
	t.Run("etcd", func(t *testing.T) {
		cli, _ := etcdtest.Start(t)
		check(t, NewEtcdStore(cli))
	})
}

func TestStoreSemantics(t *testing.T) {
	storeImpls(t, func(t *testing.T, s Store) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		rev0, err := s.Reserve(ctx, "/p/a", []byte("1"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Reserve(ctx, "/p/a", []byte("2")); !errors.Is(err, ErrAllocated) {
			t.Fatalf("second Reserve = %v, want ErrAllocated", err)
		}
		e, ok, err := s.Get(ctx, "/p/a")
		if err != nil || !ok || string(e.Value) != "1" || e.Revision != rev0 {
			t.Fatalf("Get = %+v,%v,%v", e, ok, err)
		}
		if _, err := s.Reserve(ctx, "/q/b", []byte("x")); err != nil {
			t.Fatal(err)
		}
		list, rev, err := s.List(ctx, "/p/")
		if err != nil || len(list) != 1 || rev <= rev0 {
			t.Fatalf("List = %v rev %d, %v", list, rev, err)
		}
		if err := s.Release(ctx, "/p/a", rev0+100); !errors.Is(err, ErrModified) {
			t.Fatalf("Release with wrong revision = %v, want ErrModified", err)
		}
		if err := s.Release(ctx, "/p/missing", 5); !errors.Is(err, ErrModified) {
			t.Fatalf("guarded Release of missing key = %v, want ErrModified", err)
		}
		if err := s.Release(ctx, "/p/missing", 0); err != nil {
			t.Fatalf("unguarded Release of missing key = %v", err)
		}

		wctx, wcancel := context.WithCancel(ctx)
		events := s.Watch(wctx, "/p/", rev)
		if err := s.Release(ctx, "/p/a", rev0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Reserve(ctx, "/q/c", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Reserve(ctx, "/p/d", []byte("d")); err != nil {
			t.Fatal(err)
		}
		var got []WatchEvent
		for len(got) < 2 {
			select {
			case ev := <-events:
				got = append(got, ev)
			case <-ctx.Done():
				t.Fatalf("watch events so far %+v", got)
			}
		}
		if got[0].Key != "/p/a" || !got[0].Deleted || got[1].Key != "/p/d" || string(got[1].Value) != "d" {
			t.Fatalf("events = %+v", got)
		}
		wcancel()
		for range events { // closes once the context ends
		}
	})
}
