package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/portal-net/portal/bench/internal/report"
)

const latencyPods = 10

// observation is one pod's readiness as seen by a watch.
type observation struct {
	ip    string
	ready bool
	at    time.Time
}

// latency flips the readiness of the pods of one service -samples times and
// measures, per flip, when the EndpointSlice shows it (portal) and when a
// pod watch shows the pod update itself (the baseline floor).
func (b *bench) latency(ctx context.Context, label string) error {
	ns := "lat-" + fmt.Sprint(time.Now().UnixNano()%100000)
	if _, err := b.kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := b.kc.CoreV1().Services(ns).Create(ctx, benchService("lat"), metav1.CreateOptions{}); err != nil {
		return err
	}
	pods := make([]*corev1.Pod, latencyPods)
	for i := range pods {
		p, err := createReadyPod(ctx, b.kc, ns, "lat", fmt.Sprintf("lat-%d", i), fmt.Sprintf("10.250.0.%d", i+1))
		if err != nil {
			return err
		}
		pods[i] = p
	}
	if err := b.waitSliceReady(ctx, ns, latencyPods); err != nil {
		return err
	}

	podW, err := b.kc.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: pods[len(pods)-1].ResourceVersion})
	if err != nil {
		return err
	}
	defer podW.Stop()
	sliceW, err := b.kc.DiscoveryV1().EndpointSlices(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	defer sliceW.Stop()
	podSeen := make(chan observation, 64)
	sliceSeen := make(chan observation, 256)
	go forward(podW, podSeen, func(obj any) []observation {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return nil
		}
		return []observation{{ip: p.Status.PodIP, ready: podReady(p)}}
	})
	go forward(sliceW, sliceSeen, func(obj any) []observation {
		s, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok {
			return nil
		}
		var out []observation
		for _, e := range s.Endpoints {
			out = append(out, observation{ip: e.Addresses[0], ready: ptr.Deref(e.Conditions.Ready, false)})
		}
		return out
	})

	var ours, floor []time.Duration
	deadline := time.Now().Add(b.o.limit)
	for i := 0; i < b.o.samples && time.Now().Before(deadline); i++ {
		k := i % latencyPods
		want := !podReady(pods[k])
		ip := pods[k].Status.PodIP
		t0 := time.Now()
		p, err := setReady(ctx, b.kc, pods[k], want)
		if err != nil {
			return err
		}
		pods[k] = p
		tp, err := await(ctx, podSeen, ip, want)
		if err != nil {
			return fmt.Errorf("pod watch: %w", err)
		}
		ts, err := await(ctx, sliceSeen, ip, want)
		if err != nil {
			return fmt.Errorf("endpointslice: %w", err)
		}
		floor = append(floor, tp.Sub(t0))
		ours = append(ours, ts.Sub(t0))
	}
	slices.Sort(ours)
	slices.Sort(floor)
	p99 := report.Percentile(ours, 0.99)
	b.out.Add(fmt.Sprintf("pod Ready → EndpointSlice updated, p50 / p99 (%s, %d flips)", label, len(ours)),
		report.P50P99(ours), "pod watch event: "+report.P50P99(floor),
		"p99 < 100 ms: "+report.Verdict(p99 < 100*time.Millisecond))
	return b.kc.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
}

// forward turns watch events into observations stamped on arrival.
func forward(w watch.Interface, out chan<- observation, conv func(any) []observation) {
	for ev := range w.ResultChan() {
		if ev.Type != watch.Added && ev.Type != watch.Modified {
			continue
		}
		now := time.Now()
		for _, o := range conv(ev.Object) {
			o.at = now
			select {
			case out <- o:
			default: // never block the watch; a dropped stale observation is harmless
			}
		}
	}
}

// await returns when ip is observed with the wanted readiness.
func await(ctx context.Context, seen <-chan observation, ip string, ready bool) (time.Time, error) {
	timeout := time.After(30 * time.Second)
	for {
		select {
		case o := <-seen:
			if o.ip == ip && o.ready == ready {
				return o.at, nil
			}
		case <-timeout:
			return time.Time{}, fmt.Errorf("%s ready=%v not observed within 30 s", ip, ready)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitSliceReady waits until the namespace's slices list n ready endpoints.
func (b *bench) waitSliceReady(ctx context.Context, ns string, n int) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		l, err := b.kc.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{})
		if err == nil {
			ready := 0
			for _, s := range l.Items {
				for _, e := range s.Endpoints {
					if ptr.Deref(e.Conditions.Ready, false) {
						ready++
					}
				}
			}
			if ready == n {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("namespace %s: slices never showed %d ready endpoints", ns, n)
}
