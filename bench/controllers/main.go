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
	services   int
	pods       int
	samples    int
	workers    int
	limit      time.Duration
	startLimit time.Duration
	profile    string
}

func main() {
	var o options
	flag.StringVar(&o.portal, "portal", "bin/portal", "portal binary")
	flag.IntVar(&o.services, "services", 10000, "services in the load")
	flag.IntVar(&o.pods, "pods", 10, "ready pods per service in the load")
	flag.IntVar(&o.samples, "samples", 200, "pod readiness flips per latency run")
	flag.IntVar(&o.workers, "workers", 32, "concurrent client-go workers creating the load")
	flag.DurationVar(&o.limit, "limit", 15*time.Minute, "time limit of each load or wait")
	flag.DurationVar(&o.startLimit, "start-limit", time.Minute, "time limit for a process to become ready")
	flag.StringVar(&o.profile, "profile", "", "directory for 30 s CPU profiles of the controller manager during the load and the resync")
	flag.Parse()
	if o.services < 1 || o.pods < 1 || o.samples < 1 || o.workers < 1 {
		fmt.Fprintln(os.Stderr, "bench: -services, -pods, -samples and -workers must be positive")
		os.Exit(2)
	}
	report.Main(func(ctx context.Context) ([]report.Row, error) { return run(ctx, o) })
}

// bench carries one run's processes, client and results.
type bench struct {
	o   options
	api *portalproc.Server
	cm  *controllerManager
	kc  kubernetes.Interface
	out report.Table
}

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
	dir, err := os.MkdirTemp("", "portal-bench-cm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	p, err := netutil.FreeLoopbackPorts(4)
	if err != nil {
		return nil, err
	}
	b := &bench{o: o, out: report.Table{Live: os.Stderr}}
	b.api = &portalproc.Server{
		Process: portalproc.Process{Bin: abs, Args: []string{"--disable-controllers", "--service-cidr", "10.0.0.0/16"}},
		Dir:     filepath.Join(dir, "data"), Port: p[0], Etcd: p[1], Peer: p[2],
	}
	defer b.api.Stop()
	if _, err := b.api.Start(ctx, o.startLimit); err != nil {
		return nil, fmt.Errorf("API server: %w", err)
	}
	if b.kc, err = b.api.Client(time.Minute); err != nil {
		return nil, err
	}
	b.cm = &controllerManager{Process: portalproc.Process{Bin: abs}, kubeconfig: b.api.Kubeconfig(), metrics: fmt.Sprintf("127.0.0.1:%d", p[3])}
	defer b.cm.Stop()
	if _, err := b.cm.start(ctx, o.startLimit); err != nil {
		return nil, err
	}

	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"latency, small state", func(ctx context.Context) error { return b.latency(ctx, "small state") }},
		{"load", b.load},
		{"latency, loaded", func(ctx context.Context) error { return b.latency(ctx, "loaded") }},
		{"restart resync", b.resync},
	}
	for _, s := range steps {
		fmt.Fprintln(os.Stderr, s.name)
		if err := s.fn(ctx); err != nil {
			return b.out.Rows, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return b.out.Rows, nil
}
