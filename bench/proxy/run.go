package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/portal-net/portal/bench/internal/load"
	"github.com/portal-net/portal/internal/netutil"
	"github.com/portal-net/portal/internal/testutil/portalproc"
)

// bench carries one run: the server, the lab, the proxies and what they
// measured.
type bench struct {
	o        options
	api      *portalproc.Server
	kc       kubernetes.Interface
	lab      *lab
	probe    netip.AddrPort // ClusterIP:port of the service in front of the backend
	loaded   int            // bulk services written so far
	proxies  []*proxy
	figs     map[*proxy]*figures
	mPort    int
	hPort    int
	kubeconf string

	// servers are the backend's HTTP servers; directPort is the one the
	// direct runs use and probePort the probe service's endpoint port.
	// Each requests/s run gets fresh ones (see freshPorts).
	servers               []*http.Server
	directPort, probePort uint16
	nextPort              uint16
}

// figures is what one proxy in one mode measured; err* say why a part is
// missing.
type figures struct {
	firstSync, fullSync time.Duration
	rss                 float64         // after the first sync
	rssAdds             float64         // after the adds (steady state)
	anonAdds, fileAdds  float64         // of rssAdds: anonymous memory, the binary's file pages
	adds                []time.Duration // sorted
	programErr          error
	// ruleFloor (iptables mode) is how long iptables takes to append one
	// rule to a chain of the loaded nat table: the kernel's cost of any
	// commit there, under every add. Sorted.
	ruleFloor []time.Duration

	ka, nc, kaDirect, ncDirect httpResult
	bulk, bulkDirect           time.Duration // one -bulk-mb download
	trafficErr                 error

	connect, connectDirect map[int][]time.Duration
	connectErr             map[int]error
}

func run(ctx context.Context, o options) (rows [][]string, err error) {
	b := &bench{o: o, figs: map[*proxy]*figures{}}
	portal, err := binPath(o.portal)
	if err != nil {
		return nil, fmt.Errorf("portal binary: %w (run make build)", err)
	}
	kubeProxy := ""
	if o.kubeProxy != "" {
		if kubeProxy, err = binPath(o.kubeProxy); err != nil {
			return nil, fmt.Errorf("kube-proxy binary: %w (make bench-compare builds it)", err)
		}
	}
	for _, bin := range []string{portal, kubeProxy} {
		if bin == "" {
			continue
		}
		if err := portalproc.DropPageCache(bin); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "portal-bench-proxy-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	p, err := netutil.FreeLoopbackPorts(5)
	if err != nil {
		return nil, err
	}
	b.mPort, b.hPort = p[3], p[4]
	b.api = &portalproc.Server{Process: portalproc.Process{Bin: portal}, Dir: filepath.Join(dir, "data"), Port: p[0], Etcd: p[1], Peer: p[2]}
	defer b.api.Stop()
	fmt.Fprintln(os.Stderr, "starting portal server")
	if _, err := b.api.Start(ctx, o.startLimit); err != nil {
		return nil, fmt.Errorf("API server: %w", err)
	}
	b.kubeconf = b.api.Kubeconfig()
	if b.kc, err = b.api.Client(time.Minute); err != nil {
		return nil, err
	}
	if err := createNode(ctx, b.kc); err != nil {
		return nil, err
	}
	flushRules()
	defer flushRules()
	if b.lab, err = newLab(serviceCIDR); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	defer b.lab.close()
	backend, err := b.lab.listenBackend(netip.AddrPortFrom(backendIP, backendPort).String())
	if err != nil {
		return nil, fmt.Errorf("backend listener: %w", err)
	}
	b.servers = append(b.servers, serveHTTP(backend))
	b.directPort, b.probePort = backendPort, backendPort
	defer func() {
		for _, srv := range b.servers {
			srv.Close()
		}
	}()
	probe, err := net.Listen("tcp4", netip.AddrPortFrom(dummyIP, dummyPort).String())
	if err != nil {
		return nil, fmt.Errorf("dummy listener: %w", err)
	}
	defer probe.Close()
	acceptAndClose(probe)
	vip, err := createService(ctx, b.kc, "probe", []netip.Addr{backendIP}, backendPort, nil)
	if err != nil {
		return nil, err
	}
	b.probe = netip.AddrPortFrom(vip, servicePort)

	metrics := fmt.Sprintf("http://127.0.0.1:%d/metrics", b.mPort)
	for _, m := range o.modes {
		b.proxies = append(b.proxies, &proxy{name: "portal", mode: m, bin: portal, metrics: metrics})
		if kubeProxy != "" && m != "userspace" {
			b.proxies = append(b.proxies, &proxy{name: "kube-proxy", mode: m, bin: kubeProxy, metrics: metrics})
		}
	}
	for _, px := range b.proxies {
		b.figs[px] = &figures{connect: map[int][]time.Duration{}, connectDirect: map[int][]time.Duration{}, connectErr: map[int]error{}}
	}
	for _, s := range plan(o.services, o.levels) {
		if err := b.loadTo(ctx, s.services); err != nil {
			return b.rows(), err
		}
		for _, px := range b.proxies {
			if err := b.measure(ctx, px, s); err != nil {
				return b.rows(), err
			}
		}
	}
	return b.rows(), nil
}

// loadTo writes bulk services (each with its slice) until n exist.
func (b *bench) loadTo(ctx context.Context, n int) error {
	if n <= b.loaded {
		return nil
	}
	from := b.loaded
	fmt.Fprintf(os.Stderr, "writing services %d..%d (%d endpoints each)\n", from, n-1, b.o.endpoints)
	res, err := load.Throughput(ctx, n-from, b.o.workers, b.o.limit, func(ctx context.Context, i int) error {
		svc := from + i
		node := func(k int) string { return bulkNode(svc, b.o.endpoints, k, b.o.nodes) }
		_, err := createService(ctx, b.kc, bulkName(svc), bulkEndpoints(svc, b.o.endpoints), backendPort, node)
		return err
	})
	if err != nil {
		return fmt.Errorf("writing services: %w", err)
	}
	if res.Done < n-from {
		return fmt.Errorf("wrote %d of %d services within %s", res.Done, n-from, b.o.limit)
	}
	b.loaded = n
	fmt.Fprintf(os.Stderr, "  %d services written in %s\n", res.Done, res.Elapsed.Round(time.Millisecond))
	return nil
}

// measure runs one proxy at one service count. A proxy that fails (say a
// mode it does not have) gets its cells marked and the run goes on; only
// an interrupt or a broken API ends it.
func (b *bench) measure(ctx context.Context, px *proxy, s step) (err error) {
	f := b.figs[px]
	fmt.Fprintf(os.Stderr, "%s at %d services\n", px, s.services)
	fail := func(err error) {
		fmt.Fprintf(os.Stderr, "  %s: %v\n", px, err)
		if s.program {
			f.programErr = err
		}
		if s.traffic {
			f.trafficErr = err
		}
		if s.connect {
			f.connectErr[s.services] = err
		}
	}
	if s.traffic {
		if err := b.freshPorts(ctx); err != nil {
			return err
		}
	}
	args := proxyArgs(px.name, px.mode, b.kubeconf, b.mPort, b.hPort, b.o.minSync)
	if px.name == "kube-proxy" {
		args = append(args, b.o.kpFlags...)
	} else {
		args = append(args, b.o.ptFlags...)
	}
	startProfile := ""
	if b.o.profiles != "" && px.name == "portal" && s.program {
		startProfile = filepath.Join(b.o.profiles, fmt.Sprintf("%s-%s-start-cpu.pprof", px.name, px.mode))
	}
	first, err := px.start(ctx, args, b.o.limit, startProfile, 6*time.Second)
	defer func() {
		if b.o.logs != "" {
			name := fmt.Sprintf("%s-%s-%d.log", px.name, px.mode, s.services)
			if werr := os.WriteFile(filepath.Join(b.o.logs, name), []byte(px.proc.Log.String()), 0o644); werr != nil {
				fmt.Fprintf(os.Stderr, "  keeping the log: %v\n", werr)
			}
		}
		if serr := px.stop(context.WithoutCancel(ctx)); serr != nil {
			fmt.Fprintf(os.Stderr, "  stopping %s: %v\n", px, serr)
		}
	}()
	if err != nil {
		fail(err)
		return ctx.Err()
	}
	fmt.Fprintf(os.Stderr, "  first sync after %s\n", first.Round(time.Millisecond))
	// Nothing is measured through a proxy that does not route.
	if _, err := waitLive(ctx, b.probe, time.Millisecond, b.o.limit); err != nil {
		fail(fmt.Errorf("probe service: %w", err))
		return ctx.Err()
	}
	// Connect latency first, on a settled proxy: the programming step's
	// adds and deletes would have it syncing during the connects.
	if s.connect {
		settle(ctx, px, 2*time.Second, b.o.limit)
		if err := b.connect(ctx, f, s.services); err != nil {
			f.connectErr[s.services] = err
			fmt.Fprintf(os.Stderr, "  %s: %v\n", px, err)
		}
	}
	if s.program {
		if err := b.program(ctx, px, f, first); err != nil {
			f.programErr = err
			fmt.Fprintf(os.Stderr, "  %s: %v\n", px, err)
		}
	}
	if s.traffic {
		if err := b.traffic(ctx, px, f); err != nil {
			f.trafficErr = err
			fmt.Fprintf(os.Stderr, "  %s: %v\n", px, err)
		}
	}
	return ctx.Err()
}

// program takes the programming figures: the first sync, the proxy's own
// figure for it, its memory, then -adds services one at a time.
func (b *bench) program(ctx context.Context, px *proxy, f *figures, first time.Duration) error {
	f.firstSync = first
	hc := &http.Client{Timeout: 5 * time.Second}
	m, err := scrape(ctx, hc, px.metrics)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if mean, n := histogramMean(m, metricFullSync); n > 0 {
		f.fullSync = time.Duration(mean * float64(time.Second))
	} else if mean, n := histogramMean(m, metricSyncDuration); n > 0 {
		f.fullSync = time.Duration(mean * float64(time.Second))
	}
	if b.o.profiles != "" && px.name == "portal" {
		stop := b.profile(ctx, px)
		defer stop()
	}
	names := make([]string, 0, b.o.adds)
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		for _, n := range names {
			if err := deleteService(dctx, b.kc, n); err != nil {
				fmt.Fprintf(os.Stderr, "  %v\n", err)
			}
		}
	}()
	// The first add, too, meets a settled proxy (see -add-gap): right
	// after the first sync its rate limiter's burst is spent, and the
	// add's second change (the EndpointSlice after the Service) waited
	// out the rest of --min-sync-period.
	settle(ctx, px, b.o.addGap, b.o.limit)
	// Memory once the proxy has been quiet for -add-gap: what it does
	// right after its first sync (portal hands start-up memory back
	// then) is over.
	if f.rss, err = px.proc.RSSMB(); err != nil {
		return err
	}
	var adds []time.Duration
	for i := range b.o.adds {
		name := fmt.Sprintf("add-%s-%s-%d", px.name, px.mode, i)
		names = append(names, name)
		t0 := time.Now()
		vip, err := createService(ctx, b.kc, name, []netip.Addr{dummyIP}, dummyPort, nil)
		if err != nil {
			return err
		}
		live, err := waitLive(ctx, netip.AddrPortFrom(vip, servicePort), time.Millisecond, b.o.limit)
		if err != nil {
			return fmt.Errorf("added service %d: %w", i, err)
		}
		adds = append(adds, live.Sub(t0))
		if i < b.o.adds-1 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(b.o.addGap):
			}
		}
	}
	ms := make([]string, len(adds))
	for i, d := range adds {
		ms[i] = strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 0, 64)
	}
	fmt.Fprintf(os.Stderr, "  adds, in order (ms): %s\n", strings.Join(ms, " "))
	f.adds = sortedCopy(adds)
	if f.rssAdds, err = px.proc.RSSMB(); err != nil {
		return err
	}
	if px.mode == "iptables" && px.name == "portal" {
		if f.ruleFloor, err = iptablesRuleFloor(ctx, 10); err != nil {
			return err
		}
	}
	f.anonAdds, f.fileAdds, err = px.proc.RSSParts()
	return err
}

// floorChain is the chain iptablesRuleFloor appends to: not a proxy's
// (neither prefix), and jumped to from nowhere.
const floorChain = "BENCH-RULE-FLOOR"

// iptablesRuleFloor times n appends of one rule (`-j RETURN`) to an empty
// chain of the nat table, each flushed again, with whatever the proxy
// has programmed there. iptables-nft commits a rule with a verdict by
// having the kernel validate every rule reachable from the table's base
// chains, so this is the least any change to that table costs.
func iptablesRuleFloor(ctx context.Context, n int) ([]time.Duration, error) {
	ipt := func(args ...string) error {
		out, err := exec.CommandContext(ctx, "iptables", append([]string{"-w", "-t", "nat"}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		return nil
	}
	if err := ipt("-N", floorChain); err != nil {
		return nil, err
	}
	defer func() { // flushed first: a failed append may have left a rule
		_ = ipt("-F", floorChain)
		_ = ipt("-X", floorChain)
	}()
	var took []time.Duration
	for range n {
		t0 := time.Now()
		if err := ipt("-A", floorChain, "-j", "RETURN"); err != nil {
			return nil, err
		}
		took = append(took, time.Since(t0))
		if err := ipt("-F", floorChain); err != nil {
			return nil, err
		}
	}
	return sortedCopy(took), nil
}

// traffic runs HTTP load straight at the backend and then through the
// ClusterIP, keep-alive then new connections, each pair back to back so
// that both see the same machine.
func (b *bench) traffic(ctx context.Context, px *proxy, f *figures) error {
	direct := netip.AddrPortFrom(backendIP, b.directPort)
	for _, r := range []struct {
		keepAlive   bool
		dst, direct *httpResult
	}{{true, &f.ka, &f.kaDirect}, {false, &f.nc, &f.ncDirect}} {
		var err error
		if *r.direct, err = httpLoad(ctx, direct, b.o.conc, b.o.duration, r.keepAlive); err != nil {
			return fmt.Errorf("direct: %w", err)
		}
		cpu0, cpuErr := px.proc.CPU()
		if *r.dst, err = httpLoad(ctx, b.probe, b.o.conc, b.o.duration, r.keepAlive); err != nil {
			return fmt.Errorf("through the ClusterIP: %w", err)
		}
		if cpu1, err := px.proc.CPU(); err == nil && cpuErr == nil {
			r.dst.proxyCPU = cpu1 - cpu0
		}
		fmt.Fprintf(os.Stderr, "  keep-alive=%v: %.0f req/s via ClusterIP, %.0f direct; proxy CPU %s per request\n",
			r.keepAlive, r.dst.rate(), r.direct.rate(), r.dst.cpuPerRequest())
	}
	size := int64(b.o.bulkMB) << 20
	var err error
	if f.bulkDirect, err = bulkGet(ctx, direct, size); err != nil {
		return fmt.Errorf("bulk direct: %w", err)
	}
	if f.bulk, err = bulkGet(ctx, b.probe, size); err != nil {
		return fmt.Errorf("bulk through the ClusterIP: %w", err)
	}
	fmt.Fprintf(os.Stderr, "  bulk %d MiB: %s via ClusterIP, %s direct\n", b.o.bulkMB, f.bulk, f.bulkDirect)
	return nil
}

func (b *bench) connect(ctx context.Context, f *figures, level int) error {
	var err error
	if f.connectDirect[level], err = connectLatency(ctx, netip.AddrPortFrom(backendIP, b.directPort), b.o.connects, b.o.limit); err != nil {
		return fmt.Errorf("direct: %w", err)
	}
	if f.connect[level], err = connectLatency(ctx, b.probe, b.o.connects, b.o.limit); err != nil {
		return fmt.Errorf("through the ClusterIP: %w", err)
	}
	return nil
}

// freshPorts moves the direct runs and the probe service's endpoint to
// two backend ports no earlier run used, before a proxy starts. A run of
// new connections leaves thousands of TIME_WAIT sockets in the backend
// (the server closes first); a later run through NAT to the same port
// would collide with them and stall on SYN retransmits, which would
// measure the order of the runs rather than the proxy.
func (b *bench) freshPorts(ctx context.Context) error {
	if b.nextPort == 0 {
		b.nextPort = backendPort + 1
	}
	ports := [2]uint16{b.nextPort, b.nextPort + 1}
	b.nextPort += 2
	for _, port := range ports {
		ln, err := b.lab.listenBackend(netip.AddrPortFrom(backendIP, port).String())
		if err != nil {
			return fmt.Errorf("backend listener: %w", err)
		}
		b.servers = append(b.servers, serveHTTP(ln))
	}
	sl, err := b.kc.DiscoveryV1().EndpointSlices(namespace).Get(ctx, "probe-bench", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("probe endpointslice: %w", err)
	}
	p := int32(ports[1])
	sl.Ports[0].Port = &p
	if _, err := b.kc.DiscoveryV1().EndpointSlices(namespace).Update(ctx, sl, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("probe endpointslice: %w", err)
	}
	b.directPort, b.probePort = ports[0], ports[1]
	return nil
}

// profile saves the proxy's heap profile now and starts a CPU profile over
// the adds that the returned func waits for (the metrics listener serves
// /debug/pprof on loopback).
func (b *bench) profile(ctx context.Context, px *proxy) (stop func()) {
	base := strings.TrimSuffix(px.metrics, "/metrics") + "/debug/pprof/"
	if px.startProfiled != nil {
		<-px.startProfiled
	}
	save := func(url, name string) {
		resp, err := http.Get(url)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		if err == nil {
			defer resp.Body.Close()
			var data []byte
			if data, err = io.ReadAll(resp.Body); err == nil {
				err = os.WriteFile(filepath.Join(b.o.profiles, fmt.Sprintf("%s-%s-%s", px.name, px.mode, name)), data, 0o644)
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "  profile %s: %v\n", name, err)
		}
	}
	save(base+"heap?gc=1", "heap.pprof")
	save(base+"allocs", "allocs-before.pprof")
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Long enough for every add; an idle proxy adds no samples.
		secs := int((time.Duration(b.o.adds)*(b.o.addGap+300*time.Millisecond) + 5*time.Second) / time.Second)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"profile?seconds="+strconv.Itoa(secs), nil)
		if err != nil {
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		_ = os.WriteFile(filepath.Join(b.o.profiles, fmt.Sprintf("%s-%s-cpu.pprof", px.name, px.mode)), data, 0o644)
	}()
	return func() {
		<-done
		save(base+"allocs", "allocs-after.pprof")
	}
}
