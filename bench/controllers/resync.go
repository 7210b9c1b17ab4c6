package main

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/portal-net/portal/bench/internal/report"
)

// resync restarts the controller manager on the loaded cluster and times
// its way back to a steady state: every informer listed, every service
// synced once, queues empty. It also counts slices it rewrote (there should
// be none: nothing changed while it was down).
func (b *bench) resync(ctx context.Context) error {
	before := map[string]string{}
	if err := listSlices(ctx, b, func(s *discoveryv1.EndpointSlice) { before[s.Name] = s.ResourceVersion }); err != nil {
		return err
	}
	b.cm.Stop()
	t0 := time.Now()
	if _, err := b.cm.start(ctx, b.o.startLimit); err != nil {
		return err
	}
	profiled := b.cm.profile(ctx, b.o.profile, "resync", 10*time.Second)
	if err := b.cm.settled(ctx, b.o.limit, float64(b.o.services), "endpointslice", "endpoints"); err != nil {
		return err
	}
	took := time.Since(t0)
	if err := profiled(); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	rewritten := 0
	if err := listSlices(ctx, b, func(s *discoveryv1.EndpointSlice) {
		if before[s.Name] != s.ResourceVersion {
			rewritten++
		}
	}); err != nil {
		return err
	}
	floor, err := b.listEverything(ctx)
	if err != nil {
		return err
	}
	b.out.Add(fmt.Sprintf("full resync after restart (%d services, %d pods)", b.o.services, b.o.services*b.o.pods),
		report.MS(took)+fmt.Sprintf(", %d slices rewritten", rewritten),
		"LIST of services, pods, slices, endpoints: "+report.MS(floor),
		"< 5 s: "+report.Verdict(took < 5*time.Second))
	return nil
}

// listEverything times listing what the controllers' informers list, in
// parallel as informers do: the floor under any resync.
func (b *bench) listEverything(ctx context.Context) (time.Duration, error) {
	t0 := time.Now()
	g, ctx := errgroup.WithContext(ctx)
	// ResourceVersion "0" is what informers list with: served from the watch cache.
	opts := metav1.ListOptions{ResourceVersion: "0"}
	g.Go(func() error { _, err := b.kc.CoreV1().Services("").List(ctx, opts); return err })
	g.Go(func() error { _, err := b.kc.CoreV1().Pods("").List(ctx, opts); return err })
	g.Go(func() error { _, err := b.kc.DiscoveryV1().EndpointSlices("").List(ctx, opts); return err })
	g.Go(func() error { _, err := b.kc.CoreV1().Endpoints("").List(ctx, opts); return err })
	err := g.Wait()
	return time.Since(t0), err
}
