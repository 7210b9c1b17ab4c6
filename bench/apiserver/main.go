package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/portal-net/portal/bench/internal/load"
	"github.com/portal-net/portal/bench/internal/report"
	"github.com/portal-net/portal/internal/testutil/portalproc"

	"github.com/portal-net/portal/internal/netutil"
	"github.com/portal-net/portal/internal/storage"
)

type options struct {
	portal     string
	n          int
	creates    int
	workers    int
	clients    int
	ops        int
	limit      time.Duration
	startLimit time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.portal, "portal", "bin/portal", "portal binary")
	flag.IntVar(&o.n, "n", 1000, "services in the kubectl apply file (and configmaps in its baseline)")
	flag.IntVar(&o.creates, "creates", 2000, "objects per create-throughput run")
	flag.IntVar(&o.workers, "workers", 16, "concurrent client-go workers for create throughput")
	flag.IntVar(&o.clients, "clients", 50, "concurrent clients for mutating latency")
	flag.IntVar(&o.ops, "ops", 40, "mutations per latency client (one create, then updates)")
	flag.DurationVar(&o.limit, "limit", 2*time.Minute, "time limit of each load")
	flag.DurationVar(&o.startLimit, "start-limit", time.Minute, "time limit for the server to become ready")
	flag.Parse()
	if o.n < 1 || o.creates < 1 || o.workers < 1 || o.clients < 1 || o.ops < 1 {
		fmt.Fprintln(os.Stderr, "bench: -n, -creates, -workers, -clients and -ops must be positive")
		os.Exit(2)
	}
	report.Main(func(ctx context.Context) ([]report.Row, error) { return run(ctx, o) })
}

// bench carries one run's server, clients and results.
type bench struct {
	o   options
	srv *portalproc.Server
	kc  kubernetes.Interface
	ec  *clientv3.Client
	out report.Table
}

func (b *bench) add(metric, portal, baseline, goal string) { b.out.Add(metric, portal, baseline, goal) }

// run does every measurement in order and returns the rows so far, also
// on error; the server and temp dir are gone when it returns.
func run(ctx context.Context, o options) ([]report.Row, error) {
	abs, err := filepath.Abs(o.portal)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("portal binary: %w (run make build)", err)
	}
	// RSS figures must not depend on when the binary was built.
	if err := portalproc.DropPageCache(abs); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "portal-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	p, err := netutil.FreeLoopbackPorts(3)
	if err != nil {
		return nil, err
	}
	b := &bench{o: o, out: report.Table{Live: os.Stderr}, srv: &portalproc.Server{
		// The API alone, as the upstream baseline is kube-apiserver alone.
		Process: portalproc.Process{Bin: abs, Args: []string{"--disable-controllers"}},
		Dir:     filepath.Join(dir, "data"), Port: p[0], Etcd: p[1], Peer: p[2]}}
	defer b.srv.Stop()

	steps := []struct {
		name string
		fn   func(context.Context, string) error
	}{
		{"start-up", b.startUp},
		{"kubectl apply", b.apply},
		{"create throughput", b.createThroughput},
		{"mutating latency", b.mutatingLatency},
	}
	for _, s := range steps {
		fmt.Fprintln(os.Stderr, s.name)
		if err := s.fn(ctx, dir); err != nil {
			return b.out.Rows, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	rss, err := b.srv.RSSMB()
	if err != nil {
		return b.out.Rows, err
	}
	b.add("RSS after all loads", report.MB(rss), "", "")
	if b.ec != nil {
		b.ec.Close()
	}
	return b.out.Rows, nil
}

func (b *bench) startUp(ctx context.Context, dir string) error {
	cold, err := b.srv.Start(ctx, b.o.startLimit)
	if err != nil {
		return fmt.Errorf("cold start: %w", err)
	}
	time.Sleep(2 * time.Second) // let start-up garbage be collected
	idle, err := b.srv.RSSMB()
	if err != nil {
		return err
	}
	b.srv.Stop()
	warm, err := b.srv.Start(ctx, b.o.startLimit)
	if err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	etcdCold, etcdWarm, err := etcdAloneStart(ctx, filepath.Join(dir, "etcd-alone"))
	if err != nil {
		return fmt.Errorf("etcd-alone baseline: %w", err)
	}
	b.add("start → first 200 on /readyz, cold data dir", report.MS(cold), report.MS(etcdCold)+" embedded etcd alone, fresh dir (in-process, no exec)",
		"< 1 s: "+report.Verdict(cold < time.Second))
	b.add("start → first 200 on /readyz, restart", report.MS(warm), report.MS(etcdWarm)+" embedded etcd alone, restart",
		"< 1 s: "+report.Verdict(warm < time.Second))
	b.add("idle RSS 2 s after start", report.MB(idle), "", "< 150 MB: "+report.Verdict(idle < 150))
	if b.kc, err = b.srv.Client(30 * time.Second); err != nil {
		return err
	}
	if b.ec, err = b.srv.EtcdClient(); err != nil {
		return err
	}
	return nil
}

// etcdAloneStart is the floor under portal's start: the same embedded
// etcd, started through portal's storage package on a fresh dir and then
// restarted on it.
func etcdAloneStart(ctx context.Context, dir string) (cold, warm time.Duration, err error) {
	p, err := netutil.FreeLoopbackPorts(2)
	if err != nil {
		return 0, 0, err
	}
	cfg := storage.Config{DataDir: dir, Logger: zap.NewNop(),
		ClientURL: fmt.Sprintf("http://127.0.0.1:%d", p[0]), PeerURL: fmt.Sprintf("http://127.0.0.1:%d", p[1])}
	var d [2]time.Duration
	for i := range d {
		t0 := time.Now()
		be, err := storage.Start(ctx, cfg)
		if err != nil {
			return 0, 0, err
		}
		d[i] = time.Since(t0)
		if err := be.Close(); err != nil {
			return 0, 0, err
		}
	}
	return d[0], d[1], nil
}

func (b *bench) apply(ctx context.Context, dir string) error {
	svcFile, cmFile := filepath.Join(dir, "services.yaml"), filepath.Join(dir, "configmaps.yaml")
	if err := os.WriteFile(svcFile, []byte(manifest("Service", b.o.n)), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(cmFile, []byte(manifest("ConfigMap", b.o.n)), 0o600); err != nil {
		return err
	}
	before, err := b.srv.RSSMB()
	if err != nil {
		return err
	}
	svc, err := b.srv.KubectlApply(ctx, svcFile, b.o.limit)
	if err != nil {
		return err
	}
	list, err := b.kc.CoreV1().Services(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing services: %w", err)
	}
	if got := len(list.Items); got < b.o.n {
		return fmt.Errorf("after apply: %d services, want at least %d", got, b.o.n)
	}
	time.Sleep(2 * time.Second)
	loaded, err := b.srv.RSSMB()
	if err != nil {
		return err
	}
	cm, err := b.srv.KubectlApply(ctx, cmFile, b.o.limit)
	if err != nil {
		return err
	}
	b.add(fmt.Sprintf("kubectl apply -f of %d services, one file (wall)", b.o.n), report.Secs(svc),
		fmt.Sprintf("%s for %d configmaps (no IP allocation)", report.Secs(cm), b.o.n), "")
	b.add(fmt.Sprintf("RSS with %d services", b.o.n), report.MB(loaded), report.MB(before)+" before the apply", "")
	return nil
}

func (b *bench) createThroughput(ctx context.Context, _ string) error {
	const ns = "tp"
	if _, err := b.kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating namespace: %w", err)
	}
	kinds := []struct {
		kind, resource string
		create         func(ctx context.Context, name string) error
	}{
		{"service", "services", func(ctx context.Context, name string) error {
			_, err := b.kc.CoreV1().Services(ns).Create(ctx, benchService(name), metav1.CreateOptions{})
			return err
		}},
		{"configmap", "configmaps", func(ctx context.Context, name string) error {
			_, err := b.kc.CoreV1().ConfigMaps(ns).Create(ctx, benchConfigMap(name), metav1.CreateOptions{})
			return err
		}},
	}
	for _, k := range kinds {
		r, err := load.Throughput(ctx, b.o.creates, b.o.workers, b.o.limit, func(ctx context.Context, i int) error {
			return k.create(ctx, fmt.Sprintf("tp-%05d", i))
		})
		if err != nil {
			return fmt.Errorf("%s creates: %w", k.kind, err)
		}
		// Raw Puts of values as large as what the server stored for
		// this kind, right after it, into the same etcd.
		size, err := storedSize(ctx, b.ec, k.resource, ns, "tp-00000")
		if err != nil {
			return err
		}
		value := strings.Repeat("x", size)
		e, err := load.Throughput(ctx, b.o.creates, b.o.workers, b.o.limit, func(ctx context.Context, i int) error {
			_, err := b.ec.Put(ctx, fmt.Sprintf("/bench/raw/%s/%05d", k.resource, i), value)
			return err
		})
		if err != nil {
			return fmt.Errorf("raw etcd puts: %w", err)
		}
		b.add(fmt.Sprintf("%s creates/s, %d client-go workers, %d objects", k.kind, b.o.workers, b.o.creates),
			rateCell(r, b.o.creates), throughputBaseline(r.Rate(), e.Rate(), size), throughputGoal(r.Rate()))
	}
	return nil
}

// storedSize returns the size of the value the server stored for one
// object, found by findKey so the registry's exact prefix is not assumed.
func storedSize(ctx context.Context, ec *clientv3.Client, resource, ns, name string) (int, error) {
	keys, err := ec.Get(ctx, "/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return 0, fmt.Errorf("listing etcd keys: %w", err)
	}
	all := make([]string, 0, len(keys.Kvs))
	for _, kv := range keys.Kvs {
		all = append(all, string(kv.Key))
	}
	key := findKey(all, resource, ns, name)
	if key == "" {
		return 0, fmt.Errorf("no etcd key for %s %s/%s", resource, ns, name)
	}
	v, err := ec.Get(ctx, key)
	if err != nil || len(v.Kvs) != 1 {
		return 0, errors.Join(fmt.Errorf("reading %s", key), err)
	}
	return len(v.Kvs[0].Value), nil
}

// findKey returns the key of resource ns/name: ".../resource/ns/name", or
// ".../resource/specs/ns/name" as Kubernetes lays out services; "" when
// none.
func findKey(keys []string, resource, ns, name string) string {
	for _, k := range keys {
		if strings.HasSuffix(k, "/"+resource+"/"+ns+"/"+name) || strings.HasSuffix(k, "/"+resource+"/specs/"+ns+"/"+name) {
			return k
		}
	}
	return ""
}

func (b *bench) mutatingLatency(ctx context.Context, _ string) error {
	const ns = "lat"
	if _, err := b.kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating namespace: %w", err)
	}
	// Each client creates its own object, then updates it with the
	// resourceVersion it got back: no conflicts, every request a write.
	cms := make([]*corev1.ConfigMap, b.o.clients)
	cmLat, err := load.Latency(ctx, b.o.clients, b.o.ops, b.o.limit, func(ctx context.Context, c, i int) error {
		var err error
		if i == 0 {
			cms[c], err = b.kc.CoreV1().ConfigMaps(ns).Create(ctx, benchConfigMap(fmt.Sprintf("lat-%03d", c)), metav1.CreateOptions{})
			return err
		}
		cms[c].Data["n"] = fmt.Sprint(i)
		cms[c], err = b.kc.CoreV1().ConfigMaps(ns).Update(ctx, cms[c], metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("configmaps: %w", err)
	}
	svcs := make([]*corev1.Service, b.o.clients)
	svcLat, err := load.Latency(ctx, b.o.clients, b.o.ops, b.o.limit, func(ctx context.Context, c, i int) error {
		var err error
		if i == 0 {
			svcs[c], err = b.kc.CoreV1().Services(ns).Create(ctx, benchService(fmt.Sprintf("lat-%03d", c)), metav1.CreateOptions{})
			return err
		}
		svcs[c].Labels = map[string]string{"n": fmt.Sprint(i)}
		svcs[c], err = b.kc.CoreV1().Services(ns).Update(ctx, svcs[c], metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("services: %w", err)
	}
	size, err := storedSize(ctx, b.ec, "configmaps", ns, "lat-000")
	if err != nil {
		return err
	}
	value := strings.Repeat("x", size)
	etcdLat, err := load.Latency(ctx, b.o.clients, b.o.ops, b.o.limit, func(ctx context.Context, c, i int) error {
		_, err := b.ec.Put(ctx, fmt.Sprintf("/bench/lat/%03d", c), value)
		return err
	})
	if err != nil {
		return fmt.Errorf("raw etcd puts: %w", err)
	}
	base := fmt.Sprintf("%s raw etcd Put, same pattern", report.P50P99(etcdLat))
	for _, l := range []struct {
		kind string
		lat  []time.Duration
	}{{"configmap", cmLat}, {"service", svcLat}} {
		metric := fmt.Sprintf("%s create+update latency p50 / p99, %d clients × %d", l.kind, b.o.clients, b.o.ops)
		val := report.P50P99(l.lat)
		if len(l.lat) < b.o.clients*b.o.ops {
			val += fmt.Sprintf(" (time limit: %d of %d)", len(l.lat), b.o.clients*b.o.ops)
		}
		b.add(metric, val, base, "p99 < 100 ms: "+report.Verdict(len(l.lat) > 0 && report.Percentile(l.lat, 0.99) < 100*time.Millisecond))
	}
	return nil
}
