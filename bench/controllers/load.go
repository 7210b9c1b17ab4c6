package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/portal-net/portal/bench/internal/load"
	"github.com/portal-net/portal/bench/internal/report"
)

const loadNS = "load"

// usage is a process's CPU time and RSS at one moment.
type usage struct {
	cpu time.Duration
	rss float64
}

func sample(p interface {
	CPU() (time.Duration, error)
	RSSMB() (float64, error)
}) (usage, error) {
	cpu, err := p.CPU()
	if err != nil {
		return usage{}, err
	}
	rss, err := p.RSSMB()
	return usage{cpu, rss}, err
}

// load writes -services services and -pods ready pods each, waits until
// the controllers have caught up, and reports what that cost them.
func (b *bench) load(ctx context.Context) error {
	o := b.o
	cm0, err := sample(&b.cm.Process)
	if err != nil {
		return err
	}
	api0, err := sample(&b.api.Process)
	if err != nil {
		return err
	}
	if _, err := b.kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: loadNS}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	t0 := time.Now()
	r, err := load.Throughput(ctx, o.services, o.workers, o.limit, func(ctx context.Context, i int) error {
		_, err := b.kc.CoreV1().Services(loadNS).Create(ctx, benchService(svcName(i)), metav1.CreateOptions{})
		return err
	})
	if err != nil || r.Done < o.services {
		return fmt.Errorf("services: %d of %d within the limit: %v", r.Done, o.services, err)
	}
	n := o.services * o.pods
	profiled := b.cm.profile(ctx, o.profile, "load", 30*time.Second)
	r, err = load.Throughput(ctx, n, o.workers, o.limit, func(ctx context.Context, i int) error {
		s := i % o.services
		_, err := createReadyPod(ctx, b.kc, loadNS, svcName(s), fmt.Sprintf("%s-%d", svcName(s), i/o.services), podIP(i))
		return err
	})
	if err != nil || r.Done < n {
		return fmt.Errorf("pods: %d of %d within the limit: %v", r.Done, n, err)
	}
	written := time.Now()
	b.out.Add(fmt.Sprintf("load written: %d services, %d ready pods", o.services, n), report.Secs(written.Sub(t0)), "", "")
	if err := b.cm.settled(ctx, o.limit, float64(o.services), "endpointslice", "endpoints"); err != nil {
		return err
	}
	caughtUp := time.Now()
	if err := errors.Join(profiled(), b.cm.heapProfile(ctx, o.profile, "heap")); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	if err := b.checkSlices(ctx); err != nil {
		return err
	}
	cm1, err := sample(&b.cm.Process)
	if err != nil {
		return err
	}
	api1, err := sample(&b.api.Process)
	if err != nil {
		return err
	}
	b.out.Add("controllers caught up after the last pod write", report.MS(caughtUp.Sub(written)), "", "")
	b.out.Add("CPU time during load (controllers | API server + etcd)", report.Secs(cm1.cpu-cm0.cpu), "API: "+report.Secs(api1.cpu-api0.cpu), "")
	b.out.Add(fmt.Sprintf("RSS with %d services × %d pods (controllers | API server + etcd)", o.services, o.pods),
		report.MB(cm1.rss), "API: "+report.MB(api1.rss), "")
	return nil
}

func svcName(i int) string { return fmt.Sprintf("svc-%05d", i) }

// checkSlices verifies that every load service has its pods as ready
// endpoints, so the timings above are of correct work.
func (b *bench) checkSlices(ctx context.Context) error {
	ready := map[string]int{}
	err := listSlices(ctx, b, func(s *discoveryv1.EndpointSlice) {
		for _, e := range s.Endpoints {
			if ptr.Deref(e.Conditions.Ready, false) {
				ready[s.Labels[discoveryv1.LabelServiceName]]++
			}
		}
	})
	if err != nil {
		return err
	}
	for i := range b.o.services {
		if got := ready[svcName(i)]; got != b.o.pods {
			return fmt.Errorf("service %s has %d ready endpoints, want %d", svcName(i), got, b.o.pods)
		}
	}
	return nil
}

// listSlices pages through the load namespace's EndpointSlices.
func listSlices(ctx context.Context, b *bench, fn func(*discoveryv1.EndpointSlice)) error {
	opts := metav1.ListOptions{Limit: 2000}
	for {
		l, err := b.kc.DiscoveryV1().EndpointSlices(loadNS).List(ctx, opts)
		if err != nil {
			return err
		}
		for i := range l.Items {
			fn(&l.Items[i])
		}
		if l.Continue == "" {
			return nil
		}
		opts.Continue = l.Continue
	}
}
