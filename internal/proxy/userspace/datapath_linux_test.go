package userspace_test

import (
	"context"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/knftables"

	"github.com/portal-net/portal/internal/proxy/dataplane"
	"github.com/portal-net/portal/internal/proxy/userspace"
	"github.com/portal-net/portal/internal/testutil/netnstest"
	"github.com/portal-net/portal/internal/testutil/proxylab"
)

func TestMain(m *testing.M) { netnstest.Main(m) }

func realNFT(t *testing.T) knftables.Interface {
	t.Helper()
	nft, err := knftables.New(knftables.IPv4Family, userspace.TableName)
	if err != nil {
		t.Fatalf("nftables: %v", err)
	}
	t.Cleanup(func() {
		if err := userspace.Cleanup(context.Background(), nft); err != nil {
			t.Errorf("delete table: %v", err)
		}
	})
	return nft
}

func pod(body string) string {
	if f := strings.Fields(body); len(f) == 2 {
		return f[0]
	}
	return "?" + body
}

// TestDatapath drives the userspace mode with packets in a lab of network
// namespaces: ClusterIP (TCP, UDP) from a pod and from the node, a
// NodePort from outside, the seed 000 example's three pods taking turns
// (rr), a refusing backend retried transparently, affinity, a scheduler
// chosen by annotation, and the rejects.
func TestDatapath(t *testing.T) {
	netnstest.Require(t)
	l := proxylab.New(t, "a", "b", "c")
	l.Serve(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ep := func(name string) netip.AddrPort { return netip.AddrPortFrom(l.PodIP[name], 8080) }
	dead := netip.AddrPortFrom(l.PodIP["b"], 9999) // nothing listens there: connection refused
	vip := func(s string) []netip.Addr { return []netip.Addr{netip.MustParseAddr(s)} }
	state := func(extra ...dataplane.ServicePort) dataplane.State {
		return dataplane.State{
			ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix(proxylab.ServiceCIDR)},
			NodeIPs:      []netip.Addr{netip.MustParseAddr(proxylab.NodeIP)},
			Services: append([]dataplane.ServicePort{
				{Name: "default/my-service:", VIPs: vip("10.96.0.10"), Protocol: "tcp", Port: 80, NodePort: 30080,
					Endpoints: []netip.AddrPort{ep("a"), ep("b"), ep("c")}},
				{Name: "default/dns:udp", VIPs: vip("10.96.0.10"), Protocol: "udp", Port: 53,
					Endpoints: []netip.AddrPort{ep("a"), ep("b")}},
				{Name: "default/flaky:", VIPs: vip("10.96.0.11"), Protocol: "tcp", Port: 80,
					Endpoints: []netip.AddrPort{ep("a"), dead, ep("c")}},
				{Name: "default/sticky:", VIPs: vip("10.96.0.12"), Protocol: "tcp", Port: 80,
					Endpoints: []netip.AddrPort{ep("a"), ep("b"), ep("c")}, Affinity: true, AffinityTimeout: time.Hour},
				{Name: "default/hashed:", VIPs: vip("10.96.0.13"), Protocol: "tcp", Port: 80, Scheduler: "sh",
					Endpoints: []netip.AddrPort{ep("a"), ep("b"), ep("c")}},
				{Name: "default/weighted:", VIPs: vip("10.96.0.14"), Protocol: "tcp", Port: 80, Scheduler: "wrr",
					Endpoints: []netip.AddrPort{ep("a"), ep("b"), ep("c")}, Weights: map[netip.AddrPort]int{ep("a"): 3, ep("c"): 0}},
			}, extra...),
		}
	}
	d, err := userspace.New(ctx, realNFT(t), userspace.Options{Scheduler: "rr", Grace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(ctx, state()); err != nil {
		t.Fatal(err)
	}
	get := func(t *testing.T, ns, addr string) string {
		t.Helper()
		body, err := proxylab.Get(ns, "", addr)
		if err != nil {
			t.Fatalf("GET %s from %q: %v", addr, ns, err)
		}
		return pod(body)
	}
	count := func(t *testing.T, ns, addr string, n int) map[string]int {
		t.Helper()
		got := map[string]int{}
		for range n {
			got[get(t, ns, addr)]++
		}
		return got
	}

	t.Run("seed 000: three pods take turns behind the ClusterIP (rr)", func(t *testing.T) {
		// The proxy opens its own connection: the pod sees the node's
		// bridge address, not the client's.
		if body, err := proxylab.Get(l.Pods["a"], "", "10.96.0.10:80"); err != nil || !strings.HasSuffix(body, " 10.244.1.1") {
			t.Fatalf("GET: %q, %v; want an answer to the node's bridge address", body, err)
		}
		get(t, "", "10.96.0.10:80")
		get(t, "", "10.96.0.10:80") // rr is back at a
		for _, ns := range []string{l.Pods["a"], ""} {
			got := count(t, ns, "10.96.0.10:80", 6)
			if got["a"] != 2 || got["b"] != 2 || got["c"] != 2 {
				t.Errorf("from %q: %v, want 2 each", ns, got)
			}
		}
	})
	t.Run("UDP ClusterIP", func(t *testing.T) {
		// From the node the redirect goes to 127.0.0.1: the reply must
		// leave from there to be recognised.
		for _, ns := range []string{l.Pods["c"], ""} {
			got := map[string]int{}
			for range 6 {
				ans, err := proxylab.Ask(ns, "10.96.0.10:53")
				if err != nil {
					t.Fatalf("from %q: %v", ns, err)
				}
				got[pod(ans)]++
			}
			if got["a"] == 0 || got["b"] == 0 || got["a"]+got["b"] != 6 {
				t.Errorf("from %q: answers %v, want a and b only, both", ns, got)
			}
		}
	})
	t.Run("NodePort from outside the cluster", func(t *testing.T) {
		if got := count(t, l.Client, proxylab.NodeIP+":30080", 3); len(got) != 3 {
			t.Errorf("answers %v, want each pod once", got)
		}
	})
	t.Run("a refusing backend is retried: no client sees it", func(t *testing.T) {
		got := count(t, l.Pods["a"], "10.96.0.11:80", 30)
		if got["a"]+got["c"] != 30 {
			t.Errorf("answers %v, want all 30 from a and c", got)
		}
		st := d.Stats("default/flaky:")
		if len(st) == 0 {
			t.Fatal("no stats")
		}
		for _, b := range st[0].Backends {
			if b.Addr == dead && (b.Failures == 0 || b.Total != 0) {
				t.Errorf("dead backend: %+v, want failures and no connection", b)
			}
		}
		// The same counters as metrics.
		reg := prometheus.NewRegistry()
		reg.MustRegister(d)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		series := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, lp := range m.GetLabel() {
					labels[lp.GetName()] = lp.GetValue()
				}
				if labels["service_port"] != "default/flaky:" {
					continue
				}
				v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
				series[mf.GetName()+" "+labels["backend"]] = v
			}
		}
		if series["portal_userspace_backend_failures_total "+dead.String()] == 0 ||
			series["portal_userspace_backend_connections_total "+ep("a").String()]+series["portal_userspace_backend_connections_total "+ep("c").String()] < 30 {
			t.Errorf("metrics %v: want failures of %s and 30 connections to a and c", series, dead)
		}
	})
	t.Run("session affinity pins a client", func(t *testing.T) {
		if got := count(t, l.Pods["a"], "10.96.0.12:80", 6); len(got) != 1 {
			t.Errorf("answers %v, want one pod", got)
		}
	})
	t.Run("scheduler by annotation: sh keeps a client on one pod", func(t *testing.T) {
		for _, ns := range []string{l.Pods["a"], l.Pods["b"]} {
			if got := count(t, ns, "10.96.0.13:80", 4); len(got) != 1 {
				t.Errorf("from %s: %v, want one pod", ns, got)
			}
		}
	})
	t.Run("wrr with weights a=3, b=1 (default), c=0", func(t *testing.T) {
		if got := count(t, l.Pods["b"], "10.96.0.14:80", 8); got["a"] != 6 || got["b"] != 2 || got["c"] != 0 {
			t.Errorf("8 requests: %v, want a 6, b 2, c none", got)
		}
	})
	t.Run("unallocated service address rejected at once", func(t *testing.T) {
		start := time.Now()
		_, err := proxylab.Dial(l.Pods["a"], "", "10.96.0.99:80", 2*time.Second)
		if err == nil || !strings.Contains(err.Error(), "refused") || time.Since(start) > time.Second {
			t.Errorf("dial: %v after %s, want connection refused at once", err, time.Since(start))
		}
		if _, err := proxylab.Dial(l.Pods["a"], "", "10.96.0.10:81", 2*time.Second); err == nil || !strings.Contains(err.Error(), "refused") {
			t.Errorf("service address, other port: %v, want refused", err)
		}
	})
	t.Run("the listeners take only redirected traffic", func(t *testing.T) {
		port := proxyPort(t, d, "default/my-service:")
		if _, err := proxylab.Dial(l.Client, "", proxylab.NodeIP+":"+port, 2*time.Second); err == nil || !strings.Contains(err.Error(), "refused") {
			t.Errorf("direct to the proxy port %s: %v, want refused", port, err)
		}
	})
	t.Run("a full sync repairs what was changed behind the proxy's back", func(t *testing.T) {
		if out, err := exec.Command("nft", "flush", "map", "ip", userspace.TableName, "svc-ports").CombinedOutput(); err != nil {
			t.Fatalf("nft: %v %s", err, out)
		}
		if _, err := proxylab.Get(l.Pods["a"], "", "10.96.0.10:80"); err == nil {
			t.Fatal("answered with the redirect map flushed")
		}
		if err := d.Sync(ctx, state()); err != nil { // nothing changed: nothing written
			t.Fatal(err)
		}
		if err := d.FullSync(ctx, state()); err != nil {
			t.Fatal(err)
		}
		get(t, l.Pods["a"], "10.96.0.10:80")
	})
	t.Run("a removed service is rejected, a changed one follows", func(t *testing.T) {
		s := state()
		s.Services = s.Services[1:] // my-service goes
		s.Services[1].Endpoints = s.Services[1].Endpoints[:1]
		if err := d.Sync(ctx, s); err != nil {
			t.Fatal(err)
		}
		if _, err := proxylab.Dial(l.Pods["a"], "", "10.96.0.10:80", 2*time.Second); err == nil || !strings.Contains(err.Error(), "refused") {
			t.Errorf("removed service: %v, want refused", err)
		}
		if got := count(t, l.Pods["b"], "10.96.0.11:80", 4); got["a"] != 4 {
			t.Errorf("flaky with one endpoint: %v, want a only", got)
		}
	})
}

// proxyPort is the cluster listener's port of a service port.
func proxyPort(t *testing.T, d *userspace.Datapath, name string) string {
	t.Helper()
	p := d.ListenPort(name)
	if p == 0 {
		t.Fatalf("%s has no listener", name)
	}
	return strconv.Itoa(int(p))
}
