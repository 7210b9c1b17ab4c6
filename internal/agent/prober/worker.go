package prober

import (
	"context"
	"time"

	v1 "k8s.io/api/core/v1"
)

// Defaults of the probe fields, as the API server would set them.
const (
	defaultPeriodSeconds    = 10
	defaultTimeoutSeconds   = 1
	defaultSuccessThreshold = 1
	defaultFailureThreshold = 3
)

// thresholds folds single probe outcomes into committed results: a result
// is committed once it was seen threshold times in a row.
type thresholds struct {
	success, failure int
	seen             bool
	lastOK           bool
	run              int
}

// observe records one probe outcome and reports whether it is committed.
func (t *thresholds) observe(ok bool) bool {
	if t.seen && t.lastOK == ok {
		t.run++
	} else {
		t.seen, t.lastOK, t.run = true, ok, 1
	}
	if ok {
		return t.run >= t.success
	}
	return t.run >= t.failure
}

func orDefault(v int32, def int) int {
	if v <= 0 {
		return def
	}
	return int(v)
}

// worker probes one kind of probe of one container attempt until its
// context ends or, for liveness and startup, until it commits a failure
// (the container is then restarted and a new attempt gets new workers).
type worker struct {
	m         *Manager
	key       containerKey
	c         *containerProbes
	kind      Kind
	probe     *v1.Probe
	target    target
	startedAt time.Time
	th        thresholds
	// everOK: a probe of this worker succeeded once.
	everOK bool
}

// firstGap is the first wait of the quick re-probes a readiness worker
// makes before its first success (doubling up to the period).
const firstGap = 25 * time.Millisecond

func (w *worker) run(ctx context.Context) {
	defer w.m.wg.Done()
	w.th.success = orDefault(w.probe.SuccessThreshold, defaultSuccessThreshold)
	w.th.failure = orDefault(w.probe.FailureThreshold, defaultFailureThreshold)
	if w.kind != Readiness {
		// The API rejects anything else; don't let a bad spec delay restarts.
		w.th.success = 1
	}
	period := time.Duration(orDefault(w.probe.PeriodSeconds, defaultPeriodSeconds)) * w.m.scale

	if w.kind != Startup {
		select {
		case <-w.c.started:
		case <-ctx.Done():
			return
		}
	}
	delay := w.startedAt.Add(time.Duration(w.probe.InitialDelaySeconds) * w.m.scale).Sub(w.m.now())
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	next := w.m.now().Add(period)
	for w.probeOnce(ctx, true) {
		// Until its first success a readiness probe is retried soon and
		// silently between the periodic probes, so a container that
		// listens a moment after it started is Ready then, not a whole
		// period later (kubelet waits the period). Failures of these
		// extra probes are not counted and raise no event.
		for gap := firstGap; w.kind == Readiness && w.th.success == 1 && !w.everOK && w.m.now().Add(gap).Before(next); gap *= 2 {
			t := time.NewTimer(gap)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
			if !w.probeOnce(ctx, false) {
				return
			}
		}
		select {
		case <-tick.C:
			next = w.m.now().Add(period)
		case <-ctx.Done():
			return
		}
	}
}

// probeOnce runs the probe and applies its outcome; it reports whether the
// worker should keep probing. An uncounted probe only acts on success.
func (w *worker) probeOnce(ctx context.Context, counted bool) bool {
	w.m.mu.Lock()
	pod := w.c.pod
	w.m.mu.Unlock()
	if w.kind == Readiness && pod.DeletionTimestamp != nil {
		// Terminating pods are not ready whatever the probe says.
		return ctx.Err() == nil
	}

	timeout := time.Duration(orDefault(w.probe.TimeoutSeconds, defaultTimeoutSeconds)) * w.m.scale
	pctx, cancel := context.WithTimeout(ctx, timeout)
	ok, msg := w.m.prober.run(pctx, w.probe, w.target)
	cancel()
	if ctx.Err() != nil {
		// Stopped or restarted while probing: the outcome belongs to nobody.
		return false
	}
	if ok {
		w.everOK = true
	} else if !counted {
		return true
	}
	if !ok && w.m.record != nil {
		w.m.record(pod, v1.EventTypeWarning, "Unhealthy", w.kind.String()+" probe failed: "+msg)
	}
	if !w.th.observe(ok) {
		return true
	}

	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	if ctx.Err() != nil {
		return false
	}
	switch w.kind {
	case Readiness:
		w.c.readyResult = ok
		w.m.reconcileReady(w.key, w.c, msg)
		return true
	case Liveness:
		if ok {
			return true
		}
		w.m.enqueue(Update{UID: w.key.uid, Container: w.key.name, Kind: Liveness, OK: false, Message: msg})
		return false
	default: // Startup
		if !ok {
			w.m.enqueue(Update{UID: w.key.uid, Container: w.key.name, Kind: Startup, OK: false, Message: msg})
			return false
		}
		w.c.startedResult = true
		close(w.c.started)
		w.m.enqueue(Update{UID: w.key.uid, Container: w.key.name, Kind: Startup, OK: true})
		w.m.reconcileReady(w.key, w.c, "")
		return false
	}
}
