package prober

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// scale makes one spec second 10ms so tests run periods of a few ms.
const scale = 10 * time.Millisecond

const waitFor = 5 * time.Second

type event struct{ typ, reason, msg string }

type events struct {
	mu  sync.Mutex
	all []event
}

func (e *events) record(_ *v1.Pod, typ, reason, msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, event{typ, reason, msg})
}

func (e *events) messages() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.all {
		out = append(out, ev.msg)
	}
	return out
}

// waitEvent waits for a Warning Unhealthy event with message msg.
func (e *events) waitEvent(t *testing.T, msg string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		e.mu.Lock()
		for _, ev := range e.all {
			if ev.msg == msg {
				e.mu.Unlock()
				if ev.typ != v1.EventTypeWarning || ev.reason != "Unhealthy" {
					t.Fatalf("event %q has type %q reason %q, want Warning Unhealthy", msg, ev.typ, ev.reason)
				}
				return
			}
		}
		e.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no event %q; got %q", msg, e.messages())
}

func newTestManager(t *testing.T, exec ExecFunc) (*Manager, *events) {
	t.Helper()
	ev := &events{}
	m := NewManager(Options{Exec: exec, Record: ev.record, TimeScale: scale})
	t.Cleanup(m.Stop)
	return m, ev
}

// nextUpdate waits for the next update of the manager.
func nextUpdate(t *testing.T, m *Manager) Update {
	t.Helper()
	select {
	case u := <-m.Updates():
		return u
	case <-time.After(waitFor):
		t.Fatal("no update")
	}
	return Update{}
}

// expectUpdate waits for the next update and checks its kind, result and
// message (when msg is not empty).
func expectUpdate(t *testing.T, m *Manager, container string, kind Kind, ok bool, msg string) Update {
	t.Helper()
	u := nextUpdate(t, m)
	if u.UID != testUID || u.Container != container || u.Kind != kind || u.OK != ok || (msg != "" && u.Message != msg) {
		t.Fatalf("update = %+v, want %s/%s OK=%v message %q", u, container, kind, ok, msg)
	}
	return u
}

// noUpdate checks that no update arrives within d.
func noUpdate(t *testing.T, m *Manager, d time.Duration) {
	t.Helper()
	select {
	case u := <-m.Updates():
		t.Fatalf("unexpected update %+v", u)
	case <-time.After(d):
	}
}

const testUID = types.UID("pod-uid-1")

func testPod(containers ...v1.Container) *v1.Pod {
	p := &v1.Pod{}
	p.Name, p.Namespace, p.UID = "web", "default", testUID
	p.Spec.Containers = containers
	return p
}

// statusServer is an HTTP server on 127.0.0.1 answering every request
// with a settable status code and counting requests.
type statusServer struct {
	*httptest.Server
	code     atomic.Int32
	requests atomic.Int32
}

func newStatusServer(t *testing.T, code int) *statusServer {
	t.Helper()
	s := &statusServer{}
	s.code.Store(int32(code))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		w.WriteHeader(int(s.code.Load()))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *statusServer) port(t *testing.T) int32 { return serverPort(t, s.Listener.Addr()) }

func serverPort(t *testing.T, a net.Addr) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return int32(n)
}

func httpProbe(port int32, path string) *v1.Probe {
	return &v1.Probe{
		ProbeHandler:  v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: path, Port: intstr.FromInt32(port)}},
		PeriodSeconds: 1,
		// Generous: a 10ms timeout would flake under -race.
		TimeoutSeconds: 100,
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int32 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := serverPort(t, l.Addr())
	l.Close()
	return p
}

func contains(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
