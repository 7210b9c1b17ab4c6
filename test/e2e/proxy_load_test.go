package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// netexecApp is a Deployment of agnhost netexec pods (HTTP on 8080, UDP
// on 8081) that are ready once /hostname answers, and a ClusterIP
// service of the same name on port 80 → 8080.
func netexecApp(name string, replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  replicas: %[2]d
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.53
        args: ["netexec", "--http-port=8080", "--udp-port=8081"]
        env: [{name: GENERATION, value: "1"}]
        readinessProbe:
          httpGet: {path: /hostname, port: 8080}
          periodSeconds: 1
        lifecycle:
          preStop:
            exec: {command: ["busybox", "sleep", "2"]}
---
apiVersion: v1
kind: Service
metadata: {name: %[1]s}
spec:
  selector: {app: %[1]s}
  ports: [{name: http, port: 80, targetPort: 8080}]
`, name, replicas)
}

// deployApp applies manifest, waits for deployment name to roll out and
// returns its pods' names and the ClusterIP of service name.
func deployApp(t *testing.T, s *server, name, manifest string, logs func() string) (map[string]bool, string) {
	t.Helper()
	s.mustKubectl("apply", "-f", writeFile(t, manifest))
	if out, errOut, err := s.kubectl("rollout", "status", "deployment/"+name, "--timeout=90s"); err != nil {
		t.Fatalf("rollout status %s: %v\n%s%s\nlogs:\n%s", name, err, out, errOut, logs())
	}
	names := map[string]bool{}
	for _, p := range runningPods(t, s.client(), "default", "app="+name) {
		if p.DeletionTimestamp == nil {
			names[p.Name] = true
		}
	}
	ip := strings.TrimSpace(s.mustKubectl("get", "svc", name, "-o", "jsonpath={.spec.clusterIP}"))
	return names, ip
}

// load runs fn from n goroutines until stop is called, counting requests
// and failures and keeping the first few errors.
type load struct {
	total, failed atomic.Int64
	mu            sync.Mutex
	errs          []string
	last          string // the last error
	stopc         chan struct{}
	once          sync.Once
	wg            sync.WaitGroup
}

func startLoad(n int, fn func() error) *load {
	l := &load{stopc: make(chan struct{})}
	for i := 0; i < n; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stopc:
					return
				default:
				}
				err := fn()
				l.total.Add(1)
				if err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					msg := time.Now().Format("15:04:05.000") + " " + err.Error()
					if len(l.errs) < 10 {
						l.errs = append(l.errs, msg)
					}
					l.last = msg
					l.mu.Unlock()
				}
			}
		}()
	}
	return l
}

// stop ends the load and returns "failed/total" with the first errors.
func (l *load) stop() (failed, total int64, errs string) {
	l.once.Do(func() { close(l.stopc) })
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	errs = strings.Join(l.errs, "\n")
	if l.failed.Load() > int64(len(l.errs)) {
		errs += "\n…\nlast: " + l.last
	}
	return l.failed.Load(), l.total.Load(), errs
}

// getName is one new-connection GET of /hostname that must answer with
// a pod's name.
func getName(url string) error {
	got, err := httpGet(url)
	if err == nil && got == "" {
		err = fmt.Errorf("empty answer from %s", url)
	}
	return err
}

// A rolling update of a 3-replica Deployment while 4 clients open new
// connections to its ClusterIP without pause: graceful termination and
// terminating endpoints mean no request fails.
func TestProxyRollingUpdateUnderLoad(t *testing.T) {
	s := startUp(t)
	waitNodeReady(t, s.client(), "node-1", s.log.String)
	before, ip := deployApp(t, s, "roll", netexecApp("roll", 3), s.log.String)
	url := "http://" + net.JoinHostPort(ip, "80") + "/hostname"
	waitFor(t, 10*time.Second, "ClusterIP answers", func() bool { return getName(url) == nil })

	var mu sync.Mutex
	seen := map[string]int{}
	l := startLoad(4, func() error {
		got, err := httpGet(url)
		if err == nil && got == "" {
			err = fmt.Errorf("empty answer")
		}
		mu.Lock()
		seen[got]++
		mu.Unlock()
		return err
	})
	defer l.stop()
	start := time.Now()
	s.mustKubectl("set", "env", "deployment/roll", "GENERATION=2")
	out, errOut, err := s.kubectl("rollout", "status", "deployment/roll", "--timeout=120s")
	// Past the rollout, the last old pods are still terminating.
	time.Sleep(7 * time.Second)
	failed, total, errs := l.stop()
	if err != nil {
		t.Fatalf("rollout status: %v\n%s%s\n%s", err, out, errOut, s.log.String())
	}
	t.Logf("rolling update (%v): %d of %d new-connection requests failed", time.Since(start).Round(time.Millisecond), failed, total)
	after := map[string]bool{}
	for _, p := range runningPods(t, s.client(), "default", "app=roll") {
		if p.DeletionTimestamp == nil && !before[p.Name] {
			after[p.Name] = true
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for name := range after {
		if seen[name] == 0 {
			t.Errorf("new pod %s got none of the requests: %v", name, seen)
		}
	}
	if len(after) != 3 {
		t.Errorf("%d new pods after the rollout, want 3 (old: %v)", len(after), before)
	}
	if total < 100 {
		t.Errorf("only %d requests during the rollout", total)
	}
	if failed != 0 {
		t.Errorf("%d of %d requests failed during the rolling update; first errors:\n%s\nlog:\n%s", failed, total, errs, lastLines(s.log.String(), 80))
	}
}

// httpConn is one kept-alive HTTP/1.1 connection, used by hand so the
// test knows every request went over the same TCP connection.
type httpConn struct {
	c  net.Conn
	br *bufio.Reader
}

func dialHTTP(addr string) (*httpConn, error) {
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return nil, err
	}
	return &httpConn{c: c, br: bufio.NewReader(c)}, nil
}

func (h *httpConn) get(path string) (string, error) {
	_ = h.c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := fmt.Fprintf(h.c, "GET %s HTTP/1.1\r\nHost: svc\r\n\r\n", path); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(h.br, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := bufio.NewReader(resp.Body).WriteTo(&b); err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("%s", resp.Status)
	}
	return strings.TrimSpace(b.String()), nil
}

// traceReadyEndpoints watches the service's EndpointSlices and records
// every change of their ready/serving/terminating counts; the returned
// func stops it and returns the record.
func traceReadyEndpoints(s *server, ns, svc string) func() string {
	c := s.client()
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var rec []string
	note := func(what string) {
		mu.Lock()
		rec = append(rec, time.Now().Format("15:04:05.000")+" "+what)
		mu.Unlock()
	}
	counts := func(sl *discoveryv1.EndpointSlice) string {
		var ready, serving, terminating int
		for _, ep := range sl.Endpoints {
			if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
				ready++
			}
			if ep.Conditions.Serving != nil && *ep.Conditions.Serving {
				serving++
			}
			if ep.Conditions.Terminating != nil && *ep.Conditions.Terminating {
				terminating++
			}
		}
		return fmt.Sprintf("%s ready=%d serving=%d terminating=%d", sl.Name, ready, serving, terminating)
	}
	opts := metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + svc}
	done := make(chan struct{})
	l, err := c.DiscoveryV1().EndpointSlices(ns).List(ctx, opts)
	if err != nil {
		note("list: " + err.Error())
		close(done)
	} else {
		for i := range l.Items {
			note("initial " + counts(&l.Items[i]))
		}
		opts.ResourceVersion = l.ResourceVersion
		w, err := c.DiscoveryV1().EndpointSlices(ns).Watch(ctx, opts)
		if err != nil {
			note("watch: " + err.Error())
			close(done)
		} else {
			go func() {
				defer close(done)
				defer w.Stop()
				for ev := range w.ResultChan() {
					if sl, ok := ev.Object.(*discoveryv1.EndpointSlice); ok {
						note(string(ev.Type) + " " + counts(sl))
					}
				}
			}()
		}
	}
	var once sync.Once
	return func() string {
		once.Do(func() { cancel(); <-done })
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(rec, "; ")
	}
}

// metricValue reads one unlabelled sample of the proxy's metrics (-1
// when it cannot).
func metricValue(name string) float64 {
	m, err := httpGet("http://127.0.0.1:10249/metrics")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(m, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				return v
			}
		}
	}
	return -1
}

// syncedSince waits for the proxy's metrics to show a rule sync after t0.
func syncedSince(t *testing.T, t0 time.Time, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if v := metricValue("kubeproxy_sync_proxy_rules_last_timestamp_seconds"); v > float64(t0.UnixNano())/1e9 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no proxy sync after the restart in 30s; agent log:\n%s", lastLines(logs(), 60))
}

// Restarting the agent (SIGTERM, then kill -9) while clients open new
// connections and one kept-alive connection sends requests: none fails,
// and the established connection still works afterwards.
func TestProxyAgentRestartUnderLoad(t *testing.T) {
	s := startServer(t)
	a := startAgent(t, s, "node-1", "", "--kubeconfig", s.kubeconfig(), "--node-ip", "192.0.2.10")
	waitNodeReady(t, s.client(), "node-1", a.log.String)
	_, ip := deployApp(t, s, "steady", netexecApp("steady", 2), func() string { return a.log.String() + s.log.String() })
	addr := net.JoinHostPort(ip, "80")
	url := "http://" + addr + "/hostname"
	waitFor(t, 15*time.Second, "ClusterIP answers", func() bool { return getName(url) == nil })

	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			kept, err := dialHTTP(addr)
			if err != nil {
				t.Fatal(err)
			}
			defer kept.c.Close()
			first, err := kept.get("/hostname")
			if err != nil {
				t.Fatal(err)
			}
			// One client on the kept-alive connection, three opening new ones.
			var keptMu sync.Mutex
			l := startLoad(3, func() error { return getName(url) })
			defer l.stop()
			lk := startLoad(1, func() error {
				keptMu.Lock()
				defer keptMu.Unlock()
				got, err := kept.get("/hostname")
				if err == nil && got != first {
					err = fmt.Errorf("kept-alive connection answered by %q, was %q", got, first)
				}
				time.Sleep(50 * time.Millisecond)
				return err
			})
			defer lk.stop()
			// What the API says about the service's endpoints meanwhile,
			// to tell a datapath fault from endpoints going unready.
			epTrace := traceReadyEndpoints(s, "default", "steady")
			defer epTrace()
			time.Sleep(time.Second)
			stopping := time.Now()
			a.stop(sig)
			stopped := time.Now()
			old := a.log.String()
			time.Sleep(2 * time.Second) // the node runs without its agent
			restarted := time.Now()
			a.start()
			syncedSince(t, restarted, a.log.String)
			t.Logf("agent %s at %s, gone at %s, started at %s, first sync by %s", sig, stopping.Format("15:04:05.000"),
				stopped.Format("15:04:05.000"), restarted.Format("15:04:05.000"), time.Now().Format("15:04:05.000"))
			time.Sleep(3 * time.Second) // a few syncs of the new agent
			failed, total, errs := l.stop()
			kfailed, ktotal, kerrs := lk.stop()
			t.Logf("agent %s and restart: %d of %d new-connection requests failed, %d of %d on the kept-alive connection", sig, failed, total, kfailed, ktotal)
			trace := epTrace()
			t.Logf("ready endpoints of the service: %s", trace)
			if failed != 0 || kfailed != 0 {
				t.Errorf("requests failed across the agent restart:\nnew connections %d/%d:\n%s\nkept-alive %d/%d:\n%s\nold agent log:\n%s\nnew agent log:\n%s",
					failed, total, errs, kfailed, ktotal, kerrs, lastLines(old, 40), lastLines(a.log.String(), 60))
			}
			if got, err := kept.get("/hostname"); err != nil || got != first {
				t.Errorf("established connection after the restart: %q %v (want %q)", got, err, first)
			}
		})
	}
}

// tcpCounters reads this namespace's retransmission counters.
func tcpCounters(t *testing.T) (retransSegs, synRetrans int64) {
	t.Helper()
	return snmpValue(t, "/proc/net/snmp", "Tcp:", "RetransSegs"), snmpValue(t, "/proc/net/netstat", "TcpExt:", "TCPSynRetrans")
}

// snmpValue reads one counter of a /proc/net/{snmp,netstat} table: a
// header line of names and a line of values under the same prefix.
func snmpValue(t *testing.T, file, prefix, name string) int64 {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix) {
			rows = append(rows, strings.Fields(line))
		}
	}
	if len(rows) == 2 {
		for i, k := range rows[0] {
			if k == name && i < len(rows[1]) {
				v, err := strconv.ParseInt(rows[1][i], 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
		}
	}
	t.Fatalf("%s: no %s %s", file, prefix, name)
	return 0
}

// shortGet is one GET over a new connection that the server closes
// first (so its TIME_WAIT is the backend's); it returns the body and the
// connection's own retransmission count (TCP_INFO), SYN included.
func shortGet(addr, path string) (string, uint32, error) {
	return shortGetFrom(0, addr, path)
}

// shortGetFrom is shortGet from local port port (0: the kernel picks).
func shortGetFrom(port int, addr, path string) (string, uint32, error) {
	d := net.Dialer{Timeout: 3 * time.Second}
	if port != 0 {
		// The previous connection from port may still be closing here.
		d.LocalAddr = &net.TCPAddr{Port: port}
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	c, err := d.Dial("tcp", addr)
	// A chosen port is free again once its last connection has fully
	// closed, a moment after the server's FIN was acknowledged.
	for i := 0; port != 0 && i < 50 && (errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.EADDRINUSE)); i++ {
		time.Sleep(20 * time.Millisecond)
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return "", 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n", path); err != nil {
		return "", 0, err
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", 0, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", 0, err
	}
	// Wait for the server's FIN so that it, not this client, is the side
	// that closes first and keeps TIME_WAIT.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return "", 0, err
	}
	var retrans uint32
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return "", 0, err
	}
	var infoErr error
	if err := raw.Control(func(fd uintptr) {
		var info *unix.TCPInfo
		info, infoErr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if infoErr == nil {
			retrans = info.Total_retrans
		}
	}); err != nil {
		return "", 0, err
	}
	return strings.TrimSpace(string(b)), retrans, infoErr
}

// 3000 short connections one after another from the node through a
// ClusterIP to 2 pods: all complete, none needs a retransmitted SYN
// (a source port reused while a backend still holds TIME_WAIT for it
// must not stall). Then the same through two services of the same pods
// in turn, whose flows share the backends' address and port: a source
// port the kernel reuses for the other ClusterIP must not stall either.
func TestProxyBackToBackConnections(t *testing.T) {
	s := startUp(t)
	waitNodeReady(t, s.client(), "node-1", s.log.String)
	names, ip := deployApp(t, s, "b2b", netexecApp("b2b", 2), s.log.String)
	s.mustKubectl("apply", "-f", writeFile(t, `apiVersion: v1
kind: Service
metadata: {name: b2b-twin}
spec:
  selector: {app: b2b}
  ports: [{name: http, port: 80, targetPort: 8080}]
`))
	twin := strings.TrimSpace(s.mustKubectl("get", "svc", "b2b-twin", "-o", "jsonpath={.spec.clusterIP}"))
	addrs := []string{net.JoinHostPort(ip, "80"), net.JoinHostPort(twin, "80")}
	for _, addr := range addrs {
		waitFor(t, 10*time.Second, "ClusterIP "+addr+" answers", func() bool { return getName("http://"+addr+"/hostname") == nil })
	}
	t.Run("one service", func(t *testing.T) { backToBack(t, s, names, addrs[:1]) })
	t.Run("two services of the same pods", func(t *testing.T) {
		backToBack(t, s, names, addrs)
	})
	// The sequence behind the stalls above, made deterministic by choosing
	// the client's source port: port p to the first ClusterIP (the pod that
	// answers closes first and keeps TIME_WAIT for node:p), p to the first
	// ClusterIP again (conntrack drops the closed flow; the new one may go
	// to the other pod), then p to the second ClusterIP. When that lands on
	// the first pod, its TIME_WAIT for node:p was made by a socket whose
	// TCP timestamp offset differs (the kernel derives it from addresses
	// and ports, and the ClusterIP differs), so the pod rejects the SYN
	// (PAWS) and the client retransmits it. 40 ports make a hit near certain.
	t.Run("source port reused through the other service", func(t *testing.T) {
		var retransmitted []string
		for i := 0; i < 40; i++ {
			port := 20000 + i // below the ephemeral range, so no other socket has it
			for j, addr := range []string{addrs[0], addrs[0], addrs[1]} {
				// TCP timestamps tick in milliseconds; the kernel's own port
				// choice never reuses a port this fast.
				time.Sleep(10 * time.Millisecond)
				got, retrans, err := shortGetFrom(port, addr, "/hostname")
				if err != nil || !names[got] {
					t.Fatalf("port %d, connection %d to %s: %q %v", port, j+1, addr, got, err)
				}
				if retrans != 0 {
					retransmitted = append(retransmitted, fmt.Sprintf("port %d, connection %d to %s (%s): %d retransmits", port, j+1, addr, got, retrans))
				}
			}
		}
		if len(retransmitted) > 0 {
			t.Errorf("connections from a reused source port retransmitted:\n%s", strings.Join(retransmitted, "\n"))
		}
	})
}

// backToBack makes 3000 sequential short connections, to each of addrs
// in turn, and wants none retransmitted or stalled.
func backToBack(t *testing.T, s *server, names map[string]bool, addrs []string) {
	const n = 3000
	syncs0 := metricValue("kubeproxy_sync_proxy_rules_duration_seconds_count")
	retrans0, syn0 := tcpCounters(t)
	seen := map[string]int{}
	var slow, retransmitted []string
	start := time.Now()
	for i := 0; i < n; i++ {
		t0 := time.Now()
		addr := addrs[i%len(addrs)]
		got, retrans, err := shortGet(addr, "/hostname")
		if err != nil || !names[got] {
			t.Fatalf("connection %d of %d to %s: %q %v\n%s", i+1, n, addr, got, err, lastLines(s.log.String(), 40))
		}
		d := time.Since(t0)
		if d > 500*time.Millisecond && len(slow) < 10 {
			slow = append(slow, fmt.Sprintf("#%d took %v", i+1, d))
		}
		if retrans != 0 && len(retransmitted) < 10 {
			retransmitted = append(retransmitted, fmt.Sprintf("#%d to %s: %d retransmits, took %v", i+1, addr, retrans, d.Round(time.Millisecond)))
		}
		seen[got]++
	}
	took := time.Since(start)
	retrans1, syn1 := tcpCounters(t)
	// The namespace's counters also count the node's other sockets
	// (agent, API server, probes); TCP_INFO tells this test's own.
	syncs := metricValue("kubeproxy_sync_proxy_rules_duration_seconds_count") - syncs0
	t.Logf("%d back-to-back connections in %v (%.0f/s), spread %v; namespace-wide RetransSegs +%d, TCPSynRetrans +%d; %v proxy syncs meanwhile",
		n, took.Round(time.Millisecond), float64(n)/took.Seconds(), seen, retrans1-retrans0, syn1-syn0, syncs)
	if len(retransmitted) > 0 {
		t.Errorf("connections through the ClusterIP retransmitted: %v (namespace TCPSynRetrans +%d)", retransmitted, syn1-syn0)
	}
	if len(slow) > 0 {
		t.Errorf("connections stalled: %v", slow)
	}
	if len(seen) != 2 {
		t.Errorf("connections reached %d of 2 pods: %v", len(seen), seen)
	}
}
