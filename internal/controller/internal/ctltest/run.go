package ctltest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
)

// Run starts f, then each of runs (controllers' Run, fake agents) in its
// own goroutine, until the test ends; cleanup stops the runs, waits for
// them and then shuts f down, so nothing writes after the test. Call it
// after the controllers registered their informers on f. It returns the
// context the runs get.
func Run(t testing.TB, f informers.SharedInformerFactory, runs ...func(ctx context.Context)) context.Context {
	t.Helper()
	t.Cleanup(f.Shutdown)
	return start(t, f, runs)
}

// Go is Run without an informer factory, for helpers that poll the API.
func Go(t testing.TB, runs ...func(ctx context.Context)) context.Context {
	t.Helper()
	return start(t, nil, runs)
}

func start(t testing.TB, f informers.SharedInformerFactory, runs []func(ctx context.Context)) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	if f != nil {
		// Started before the runs so that a run waiting for f's caches
		// waits for every informer registered so far.
		f.Start(ctx.Done())
	}
	var wg sync.WaitGroup
	for _, run := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(ctx)
		}()
	}
	// Registered after f.Shutdown, so it runs before it.
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return ctx
}

// APIRecorder records events into the API as component, as in production,
// until the test ends. Call it before Run so that its cleanup, which runs
// last, comes after the controllers stopped.
func APIRecorder(t testing.TB, client kubernetes.Interface, component string) record.EventRecorder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := record.NewBroadcaster(record.WithContext(ctx))
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	t.Cleanup(func() {
		cancel()
		b.Shutdown()
	})
	return b.NewRecorder(scheme.Scheme, v1.EventSource{Component: component})
}

// CountSyncs wraps *sync so that each call is counted; a test uses it to
// see that periodic resyncs happened.
func CountSyncs(sync *func(ctx context.Context, key string) error) *atomic.Int64 {
	var n atomic.Int64
	inner := *sync
	*sync = func(ctx context.Context, key string) error {
		n.Add(1)
		return inner(ctx, key)
	}
	return &n
}
