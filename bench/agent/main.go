package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/portal-net/portal/bench/internal/report"
	"github.com/portal-net/portal/internal/netutil"
	"github.com/portal-net/portal/internal/testutil/portalproc"
)

type options struct {
	portal     string
	shim       string
	pods       int
	cycles     int
	workers    int
	limit      time.Duration
	startLimit time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.portal, "portal", "bin/portal", "portal binary")
	flag.StringVar(&o.shim, "shim", "", "pod supervisor binary for the baselines (default: portal-shim next to -portal)")
	flag.IntVar(&o.pods, "pods", 100, "pods for the latency, memory and create/delete runs")
	flag.IntVar(&o.cycles, "cycles", 1000, "pod create/delete cycles of the leak check")
	flag.IntVar(&o.workers, "workers", 10, "pods in flight at once")
	flag.DurationVar(&o.limit, "limit", 5*time.Minute, "time limit of each load or wait")
	flag.DurationVar(&o.startLimit, "start-limit", time.Minute, "time limit for the server and the node to become ready")
	flag.Parse()
	if o.pods < 1 || o.cycles < 1 || o.workers < 1 {
		fmt.Fprintln(os.Stderr, "bench: -pods, -cycles and -workers must be positive")
		os.Exit(2)
	}
	report.Main(func(ctx context.Context) ([]report.Row, error) { return run(ctx, o) })
}

// bench carries one run's processes, client and results.
type bench struct {
	o       options
	shim    string
	api     *portalproc.Server
	agent   *agent
	kc      kubernetes.Interface
	tracker *tracker
	out     report.Table

	// agentRSSBefore is the agent's RSS (MiB) before the first pod.
	agentRSSBefore float64
}

func run(ctx context.Context, o options) (rows []report.Row, err error) {
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
	b := &bench{o: o, shim: o.shim, out: report.Table{Live: os.Stderr}}
	if b.shim == "" {
		b.shim = filepath.Join(filepath.Dir(abs), "portal-shim")
	}
	if _, err := os.Stat(b.shim); err != nil {
		return nil, fmt.Errorf("pod supervisor: %w (make build builds it next to portal)", err)
	}
	if err := portalproc.DropPageCache(b.shim); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "portal-bench-agent-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	p, err := netutil.FreeLoopbackPorts(4)
	if err != nil {
		return nil, err
	}
	b.api = &portalproc.Server{
		Process: portalproc.Process{Bin: abs},
		Dir:     filepath.Join(dir, "data"), Port: p[0], Etcd: p[1], Peer: p[2],
	}
	defer b.api.Stop()
	fmt.Fprintln(os.Stderr, "starting portal server")
	if _, err := b.api.Start(ctx, o.startLimit); err != nil {
		return nil, fmt.Errorf("API server: %w", err)
	}
	if b.kc, err = b.api.Client(time.Minute); err != nil {
		return nil, err
	}
	b.agent = &agent{
		Process: portalproc.Process{Bin: abs},
		node:    "bench-node", kubeconfig: b.api.Kubeconfig(), port: p[3],
		rootDir: filepath.Join(dir, "root"), runDir: filepath.Join(dir, "run"),
	}
	// Deferred after the server's Stop, so this runs first: pods go
	// through the API while agent and server are still up, then the agent
	// stops and whatever a failure left is killed and unmounted before
	// the dir is removed.
	defer b.agent.cleanUp()
	defer func() {
		if cerr := b.deleteAll(context.WithoutCancel(ctx), 2*time.Minute); cerr != nil {
			fmt.Fprintf(os.Stderr, "clean up: %v\n", cerr)
		}
	}()
	fmt.Fprintln(os.Stderr, "starting portal agent")
	if err := b.agent.start(ctx, b.kc, o.startLimit); err != nil {
		return nil, err
	}
	tctx, stopTracker := context.WithCancel(ctx)
	defer stopTracker()
	if b.tracker, err = startTracker(tctx, b.kc, benchNamespace, benchSelector); err != nil {
		return nil, err
	}

	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"pod start latency", b.latency},
		{"memory per pod", b.memory},
		{"create/delete wall time", b.createDelete},
		{"leak check", b.leakCheck},
	}
	for _, s := range steps {
		fmt.Fprintln(os.Stderr, s.name)
		if err := s.fn(ctx); err != nil {
			return b.out.Rows, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return b.out.Rows, nil
}
