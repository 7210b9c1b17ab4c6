package prober

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestNoProbesReadyAtOnce(t *testing.T) {
	m, _ := newTestManager(t, nil)
	pod := testPod(v1.Container{Name: "app"})
	m.ContainerStarted(pod, "app", "127.0.0.1", time.Now())
	expectUpdate(t, m, "app", Readiness, true, "")
	if !m.Ready(testUID, "app") || !m.Started(testUID, "app") {
		t.Fatalf("Ready=%v Started=%v, want both true", m.Ready(testUID, "app"), m.Started(testUID, "app"))
	}
	m.ContainerStopped(testUID, "app")
	expectUpdate(t, m, "app", Readiness, false, "")
	if m.Ready(testUID, "app") || m.Started(testUID, "app") {
		t.Fatal("stopped container still ready or started")
	}
	if m.Ready(testUID, "other") || m.Started("nope", "app") {
		t.Fatal("unknown container reported ready or started")
	}
}

func TestReadinessFlipsWithEvents(t *testing.T) {
	srv := newStatusServer(t, http.StatusOK)
	m, ev := newTestManager(t, nil)
	p := httpProbe(srv.port(t), "/healthz")
	p.FailureThreshold = 2
	pod := testPod(v1.Container{Name: "app", ReadinessProbe: p})
	m.ContainerStarted(pod, "app", "127.0.0.1", time.Now())
	// The first probe starts at once; only a ready container that no
	// probe has reached yet is wrong.
	if ready, probed := m.Ready(testUID, "app"), srv.requests.Load(); ready && probed == 0 {
		t.Fatal("ready before the first probe")
	}
	if !m.Started(testUID, "app") {
		t.Fatal("not started without a startup probe")
	}

	expectUpdate(t, m, "app", Readiness, true, "")
	if !m.Ready(testUID, "app") {
		t.Fatal("Ready false after success update")
	}

	srv.code.Store(http.StatusInternalServerError)
	before := srv.requests.Load()
	expectUpdate(t, m, "app", Readiness, false, "HTTP probe failed with statuscode: 500")
	if n := srv.requests.Load() - before; n < 2 {
		t.Fatalf("readiness went false after %d failed probes, want failureThreshold 2", n)
	}
	ev.waitEvent(t, "Readiness probe failed: HTTP probe failed with statuscode: 500")

	srv.code.Store(http.StatusFound) // 3xx counts as success
	expectUpdate(t, m, "app", Readiness, true, "")
	if !m.Ready(testUID, "app") {
		t.Fatal("not ready after recovery")
	}
}

func TestReadinessSuccessThreshold(t *testing.T) {
	srv := newStatusServer(t, http.StatusOK)
	m, _ := newTestManager(t, nil)
	p := httpProbe(srv.port(t), "/")
	p.SuccessThreshold = 3
	m.ContainerStarted(testPod(v1.Container{Name: "app", ReadinessProbe: p}), "app", "127.0.0.1", time.Now())
	expectUpdate(t, m, "app", Readiness, true, "")
	if n := srv.requests.Load(); n < 3 {
		t.Fatalf("ready after %d probes, want successThreshold 3", n)
	}
}

func TestLivenessFailureAfterThreshold(t *testing.T) {
	srv := newStatusServer(t, http.StatusServiceUnavailable)
	m, ev := newTestManager(t, nil)
	p := httpProbe(srv.port(t), "/live")
	p.FailureThreshold = 3
	pod := testPod(v1.Container{Name: "app", LivenessProbe: p})
	m.ContainerStarted(pod, "app", "127.0.0.1", time.Now())
	expectUpdate(t, m, "app", Readiness, true, "") // no readiness probe

	expectUpdate(t, m, "app", Liveness, false, "HTTP probe failed with statuscode: 503")
	if n := srv.requests.Load(); n != 3 {
		t.Fatalf("liveness failed after %d probes, want 3", n)
	}
	ev.waitEvent(t, "Liveness probe failed: HTTP probe failed with statuscode: 503")
	// On hold until the container is restarted.
	time.Sleep(10 * scale)
	if n := srv.requests.Load(); n != 3 {
		t.Fatalf("liveness kept probing after the failure: %d requests", n)
	}

	// The restarted container is probed again, and fails again.
	m.ContainerStopped(testUID, "app")
	expectUpdate(t, m, "app", Readiness, false, "")
	m.ContainerStarted(pod, "app", "127.0.0.1", time.Now())
	expectUpdate(t, m, "app", Readiness, true, "")
	expectUpdate(t, m, "app", Liveness, false, "")
	if n := srv.requests.Load(); n != 6 {
		t.Fatalf("second attempt failed after %d probes in total, want 6", n)
	}
}

func TestLivenessPassingSendsNothing(t *testing.T) {
	srv := newStatusServer(t, http.StatusOK)
	m, ev := newTestManager(t, nil)
	pod := testPod(v1.Container{Name: "app", LivenessProbe: httpProbe(srv.port(t), "/")})
	m.ContainerStarted(pod, "app", "127.0.0.1", time.Now())
	expectUpdate(t, m, "app", Readiness, true, "")
	noUpdate(t, m, 10*scale)
	if srv.requests.Load() < 3 {
		t.Fatalf("liveness probed %d times in 10 periods", srv.requests.Load())
	}
	if len(ev.messages()) != 0 {
		t.Fatalf("events for a passing probe: %q", ev.messages())
	}
}

// fakeExec answers exec probes from a function of the call number.
type fakeExec struct {
	calls  atomic.Int32
	answer func(n int32, cmd []string) ([]byte, int, error)
}

func (f *fakeExec) exec(ctx context.Context, uid types.UID, container string, cmd []string) ([]byte, int, error) {
	if uid != testUID {
		return nil, 0, context.Canceled
	}
	return f.answer(f.calls.Add(1), cmd)
}

func execProbe(cmd ...string) *v1.Probe {
	return &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: cmd}}, PeriodSeconds: 1, TimeoutSeconds: 100}
}

func TestStartupProbeGatesLivenessAndReadiness(t *testing.T) {
	srv := newStatusServer(t, http.StatusOK)
	var probedEarly atomic.Int32
	fe := &fakeExec{answer: func(n int32, _ []string) ([]byte, int, error) {
		// Until this call returns success, liveness and readiness must
		// not have run.
		probedEarly.Store(srv.requests.Load())
		if n < 4 {
			return []byte("still starting"), 1, nil
		}
		return nil, 0, nil
	}}
	m, ev := newTestManager(t, fe.exec)
	startup := execProbe("check-started")
	startup.FailureThreshold = 10
	pod := testPod(v1.Container{
		Name:           "app",
		StartupProbe:   startup,
		LivenessProbe:  httpProbe(srv.port(t), "/live"),
		ReadinessProbe: httpProbe(srv.port(t), "/ready"),
	})
	m.ContainerStarted(pod, "app", "127.0.0.1", time.Now())
	if m.Started(testUID, "app") || m.Ready(testUID, "app") {
		t.Fatal("started or ready before the startup probe passed")
	}
	expectUpdate(t, m, "app", Startup, true, "")
	if n := fe.calls.Load(); n != 4 {
		t.Fatalf("started after %d startup probes, want 4", n)
	}
	if n := probedEarly.Load(); n != 0 {
		t.Fatalf("liveness/readiness probed %d times before startup succeeded", n)
	}
	if !m.Started(testUID, "app") {
		t.Fatal("Started false after startup update")
	}
	expectUpdate(t, m, "app", Readiness, true, "")
	ev.waitEvent(t, "Startup probe failed: still starting")
	// The startup probe stops once it succeeded.
	time.Sleep(5 * scale)
	if n := fe.calls.Load(); n != 4 {
		t.Fatalf("startup probe ran %d times, want it to stop after success", n)
	}
}

func TestNoLivenessOrReadinessBeforeStartup(t *testing.T) {
	srv := newStatusServer(t, http.StatusOK)
	fe := &fakeExec{answer: func(int32, []string) ([]byte, int, error) { return nil, 1, nil }}
	m, ev := newTestManager(t, fe.exec)
	startup := execProbe("false")
	startup.FailureThreshold = 5
	pod := testPod(v1.Container{
		Name:           "app",
		StartupProbe:   startup,
		LivenessProbe:  httpProbe(srv.port(t), "/live"),
		ReadinessProbe: httpProbe(srv.port(t), "/ready"),
	})
	m.ContainerStarted(pod, "app", "127.0.0.1", time.Now())
	// Startup failing over its threshold asks for a restart.
	expectUpdate(t, m, "app", Startup, false, `command "false" exited with 1`)
	if n := fe.calls.Load(); n != 5 {
		t.Fatalf("startup failed after %d probes, want 5", n)
	}
	ev.waitEvent(t, `Startup probe failed: command "false" exited with 1`)
	time.Sleep(5 * scale)
	if n := srv.requests.Load(); n != 0 {
		t.Fatalf("liveness/readiness probed %d times before startup passed", n)
	}
	if m.Started(testUID, "app") || m.Ready(testUID, "app") {
		t.Fatal("started or ready after startup failure")
	}
	noUpdate(t, m, 5*scale)
}

func TestExecProbe(t *testing.T) {
	var gotCmd atomic.Value
	fe := &fakeExec{answer: func(n int32, cmd []string) ([]byte, int, error) {
		gotCmd.Store(cmd)
		if n == 1 {
			return []byte("ok\n"), 0, nil
		}
		return []byte("cat: /tmp/healthy: No such file or directory\n"), 1, nil
	}}
	m, ev := newTestManager(t, fe.exec)
	p := execProbe("cat", "/tmp/healthy")
	p.FailureThreshold = 1
	m.ContainerStarted(testPod(v1.Container{Name: "app", ReadinessProbe: p}), "app", "127.0.0.1", time.Now())
	expectUpdate(t, m, "app", Readiness, true, "")
	expectUpdate(t, m, "app", Readiness, false, "cat: /tmp/healthy: No such file or directory")
	ev.waitEvent(t, "Readiness probe failed: cat: /tmp/healthy: No such file or directory")
	if c := gotCmd.Load().([]string); len(c) != 2 || c[0] != "cat" || c[1] != "/tmp/healthy" {
		t.Fatalf("exec got command %q", c)
	}
}

func TestExecProbeTimeout(t *testing.T) {
	fe := &fakeExec{answer: nil}
	blocking := func(ctx context.Context, uid types.UID, c string, cmd []string) ([]byte, int, error) {
		fe.calls.Add(1)
		<-ctx.Done()
		return nil, -1, ctx.Err()
	}
	m, ev := newTestManager(t, blocking)
	p := execProbe("sleep", "100")
	p.TimeoutSeconds = 2
	p.FailureThreshold = 2
	m.ContainerStarted(testPod(v1.Container{Name: "app", LivenessProbe: p}), "app", "127.0.0.1", time.Now())
	expectUpdate(t, m, "app", Readiness, true, "")
	start := time.Now()
	expectUpdate(t, m, "app", Liveness, false, `command "sleep 100" timed out`)
	if d := time.Since(start); d < 2*scale {
		t.Fatalf("timed out after %v, want at least the 2s (scaled) timeout", d)
	}
	ev.waitEvent(t, `Liveness probe failed: command "sleep 100" timed out`)
}

func TestInitialDelay(t *testing.T) {
	srv := newStatusServer(t, http.StatusOK)
	m, _ := newTestManager(t, nil)
	p := httpProbe(srv.port(t), "/")
	p.InitialDelaySeconds = 20
	start := time.Now()
	m.ContainerStarted(testPod(v1.Container{Name: "app", ReadinessProbe: p}), "app", "127.0.0.1", start)
	expectUpdate(t, m, "app", Readiness, true, "")
	if d := time.Since(start); d < 20*scale {
		t.Fatalf("first probe after %v, want initialDelay %v", d, 20*scale)
	}

	// The delay counts from the container's start, not from the call.
	m2, _ := newTestManager(t, nil)
	m2.ContainerStarted(testPod(v1.Container{Name: "app", ReadinessProbe: p}), "app", "127.0.0.1", time.Now().Add(-time.Hour))
	start = time.Now()
	expectUpdate(t, m2, "app", Readiness, true, "")
	if d := time.Since(start); d > 15*scale {
		t.Fatalf("first probe after %v for a container started an hour ago", d)
	}
}

func TestNamedPort(t *testing.T) {
	srv := newStatusServer(t, http.StatusOK)
	m, ev := newTestManager(t, nil)
	good := &v1.Probe{ProbeHandler: v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Port: intstr.FromString("http")}}, PeriodSeconds: 1, TimeoutSeconds: 100}
	bad := &v1.Probe{ProbeHandler: v1.ProbeHandler{TCPSocket: &v1.TCPSocketAction{Port: intstr.FromString("metrics")}}, PeriodSeconds: 1, TimeoutSeconds: 100, FailureThreshold: 1}
	pod := testPod(
		v1.Container{Name: "app", ReadinessProbe: good, Ports: []v1.ContainerPort{{Name: "dns", ContainerPort: 53}, {Name: "http", ContainerPort: srv.port(t)}}},
		v1.Container{Name: "side", ReadinessProbe: bad, Ports: []v1.ContainerPort{{Name: "http", ContainerPort: srv.port(t)}}},
	)
	m.ContainerStarted(pod, "app", "127.0.0.1", time.Now())
	expectUpdate(t, m, "app", Readiness, true, "")
	if srv.requests.Load() == 0 {
		t.Fatal("named port did not reach the server")
	}

	m.ContainerStarted(pod, "side", "127.0.0.1", time.Now())
	ev.waitEvent(t, `Readiness probe failed: port "metrics" not found in container`)
	if m.Ready(testUID, "side") {
		t.Fatal("ready with an unknown named port")
	}
}

func TestDeletingPodNotReady(t *testing.T) {
	srv := newStatusServer(t, http.StatusOK)
	m, _ := newTestManager(t, nil)
	pod := testPod(v1.Container{Name: "app", ReadinessProbe: httpProbe(srv.port(t), "/")})
	m.ContainerStarted(pod, "app", "127.0.0.1", time.Now())
	expectUpdate(t, m, "app", Readiness, true, "")

	deleting := pod.DeepCopy()
	now := metav1.Now()
	deleting.DeletionTimestamp = &now
	m.UpdatePod(deleting)
	expectUpdate(t, m, "app", Readiness, false, "")
	if m.Ready(testUID, "app") {
		t.Fatal("deleting pod still ready")
	}
	// Readiness probes stop: the server sees no more requests.
	time.Sleep(3 * scale)
	n := srv.requests.Load()
	time.Sleep(5 * scale)
	if srv.requests.Load() != n {
		t.Fatal("readiness probes kept running for a deleting pod")
	}
	noUpdate(t, m, 2*scale)
}

func TestRemovePodAndStop(t *testing.T) {
	srv := newStatusServer(t, http.StatusOK)
	m := NewManager(Options{TimeScale: scale})
	pod := testPod(v1.Container{Name: "app", ReadinessProbe: httpProbe(srv.port(t), "/")})
	m.ContainerStarted(pod, "app", "127.0.0.1", time.Now())
	expectUpdate(t, m, "app", Readiness, true, "")
	m.RemovePod(testUID)
	if m.Ready(testUID, "app") {
		t.Fatal("removed pod still ready")
	}
	time.Sleep(3 * scale)
	n := srv.requests.Load()
	time.Sleep(5 * scale)
	if srv.requests.Load() != n {
		t.Fatal("probes kept running after RemovePod")
	}
	m.ContainerStarted(pod, "app", "127.0.0.1", time.Now())
	m.Stop()
	m.Stop() // idempotent
	for range m.Updates() {
		// drains; the channel must be closed
	}
	m.ContainerStarted(pod, "app", "127.0.0.1", time.Now()) // no-op after Stop
}

// A slow consumer must not block ContainerStarted or the workers.
func TestUpdatesNeverBlock(t *testing.T) {
	m, _ := newTestManager(t, nil)
	var containers []v1.Container
	for i := range 3 * updatesBuffer {
		containers = append(containers, v1.Container{Name: "c" + string(rune('a'+i%26)) + string(rune('a'+i/26))})
	}
	pod := testPod(containers...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, c := range containers {
			m.ContainerStarted(pod, c.Name, "127.0.0.1", time.Now())
		}
	}()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatal("ContainerStarted blocked on a full Updates channel")
	}
	for range containers {
		if u := nextUpdate(t, m); u.Kind != Readiness || !u.OK {
			t.Fatalf("update %+v", u)
		}
	}
}

func TestThresholds(t *testing.T) {
	for _, tc := range []struct {
		name             string
		success, failure int
		outcomes         []bool
		committed        []bool
	}{
		{"first success commits", 1, 3, []bool{true}, []bool{true}},
		{"failures need a run", 1, 3, []bool{false, false, false, false}, []bool{false, false, true, true}},
		{"a success resets the failure run", 1, 2, []bool{false, true, false, false}, []bool{false, true, false, true}},
		{"success threshold", 2, 1, []bool{true, true, false, true, true}, []bool{false, true, true, false, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			th := thresholds{success: tc.success, failure: tc.failure}
			for i, ok := range tc.outcomes {
				if got := th.observe(ok); got != tc.committed[i] {
					t.Fatalf("outcome %d (%v): committed=%v, want %v", i, ok, got, tc.committed[i])
				}
			}
		})
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{Liveness: "Liveness", Readiness: "Readiness", Startup: "Startup", Kind(9): "Unknown"} {
		if k.String() != want {
			t.Errorf("%d.String() = %q, want %q", k, k.String(), want)
		}
	}
}

// Before its first success a readiness probe is retried quickly and
// silently: a container that answers a moment after it started is Ready
// well within one period, with no Unhealthy event for the early misses.
func TestReadinessFirstSuccessWithinPeriod(t *testing.T) {
	srv := newStatusServer(t, http.StatusServiceUnavailable)
	m, ev := newTestManager(t, nil)
	p := httpProbe(srv.port(t), "/healthz")
	p.PeriodSeconds = 100 // 1 s with the test scale
	pod := testPod(v1.Container{Name: "app", ReadinessProbe: p})
	start := time.Now()
	m.ContainerStarted(pod, "app", "127.0.0.1", start)
	time.AfterFunc(60*time.Millisecond, func() { srv.code.Store(http.StatusOK) })
	expectUpdate(t, m, "app", Readiness, true, "")
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("ready after %v; the period is 1 s and the server answered after 60 ms", took)
	}
	if n := len(ev.messages()); n != 1 {
		t.Errorf("want only the first (periodic) failure as an event, got %q", ev.messages())
	}
}

// An agent restart adopts a container that was ready: it is ready at
// once (no dip), and still goes unready after failureThreshold failures.
func TestAdoptedReadyContainerStaysReady(t *testing.T) {
	srv := newStatusServer(t, http.StatusOK)
	m, _ := newTestManager(t, nil)
	p := httpProbe(srv.port(t), "/healthz")
	p.FailureThreshold = 2
	startup := httpProbe(srv.port(t), "/healthz")
	pod := testPod(v1.Container{Name: "app", ReadinessProbe: p, StartupProbe: startup})
	m.ContainerAdopted(pod, "app", "127.0.0.1", time.Now().Add(-time.Minute), true, true)
	expectUpdate(t, m, "app", Readiness, true, "")
	if !m.Ready(testUID, "app") || !m.Started(testUID, "app") {
		t.Fatalf("adopted ready container: Ready=%v Started=%v, want both", m.Ready(testUID, "app"), m.Started(testUID, "app"))
	}
	srv.code.Store(http.StatusInternalServerError)
	expectUpdate(t, m, "app", Readiness, false, "HTTP probe failed with statuscode: 500")

	// A container the status did not report ready waits for its probe.
	m2, _ := newTestManager(t, nil)
	m2.ContainerAdopted(pod, "app", "127.0.0.1", time.Now().Add(-time.Minute), false, true)
	if m2.Ready(testUID, "app") {
		t.Fatal("adopted unready container is ready before a probe")
	}
}
