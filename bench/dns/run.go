package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/portal-net/portal/internal/testutil/dnspeer"
	"github.com/portal-net/portal/internal/testutil/portalproc"
)

// figures are one server's measurements; a failed step keeps its error.
type figures struct {
	start    time.Duration
	startErr error
	loads    [numKinds]*kindFigures
	rss      float64
	anon     float64 // of rss: anonymous memory
	file     float64 // of rss: the binary's file pages
	rssErr   error
}

type kindFigures struct {
	res      loadResult
	err      error
	upstream int64         // queries the fake upstream got during the measured run
	cpu      time.Duration // the server's user+system CPU time during the measured run
	perf     *perfResult   // dnsperf's run, when -dnsperf is set
	perfErr  error
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func run(ctx context.Context, o options) ([][]string, error) {
	portal, err := binPath(o.portal)
	if err != nil {
		return nil, fmt.Errorf("-portal: %w", err)
	}
	if o.dnsperf != "" {
		if o.dnsperf, err = binPath(o.dnsperf); err != nil {
			return nil, fmt.Errorf("-dnsperf: %w", err)
		}
	}
	var coredns string
	if o.coredns != "" {
		if coredns, err = binPath(o.coredns); err != nil {
			return nil, fmt.Errorf("-coredns: %w", err)
		}
	}
	for _, bin := range []string{portal, coredns} {
		if bin == "" {
			continue
		}
		if err := portalproc.DropPageCache(bin); err != nil {
			return nil, err
		}
	}
	tmp, err := os.MkdirTemp("", "bench-dns-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	ports, err := dnspeer.FreePorts(7)
	if err != nil {
		return nil, err
	}
	api := &portalproc.Server{Process: portalproc.Process{Bin: portal}, Dir: filepath.Join(tmp, "server"),
		Port: ports[0], Etcd: ports[1], Peer: ports[2]}
	defer api.Stop()
	logf("starting portal server")
	if _, err := api.Start(ctx, o.startLimit); err != nil {
		return nil, err
	}
	kc, err := api.Client(30 * time.Second)
	if err != nil {
		return nil, err
	}
	logf("writing %d ClusterIP and %d headless services, %d endpoints each", o.services, o.headless, endpointsEach)
	t0 := time.Now()
	d, err := writeObjects(ctx, kc, o)
	if err != nil {
		return nil, err
	}
	logf("  written in %s", time.Since(t0).Round(time.Millisecond))

	up, err := startUpstream()
	if err != nil {
		return nil, err
	}
	defer up.Stop()

	servers := []*dnsServer{{name: "portal", proc: portalproc.Process{Bin: portal}, addr: dnspeer.HostPort(ports[3]),
		args: dnspeer.PortalArgs(api.Kubeconfig(), dnspeer.HostPort(ports[3]), up.Addr, dnspeer.HostPort(ports[4]), "bench", filepath.Join(tmp, "agent"))}}
	if coredns != "" {
		conf := filepath.Join(tmp, "Corefile")
		if err := os.WriteFile(conf, []byte(dnspeer.Corefile(api.Kubeconfig(), ports[5], up.Addr, "cache 30", "prometheus "+dnspeer.HostPort(ports[6]))), 0o644); err != nil {
			return nil, err
		}
		servers = append(servers, &dnsServer{name: "coredns", proc: portalproc.Process{Bin: coredns}, addr: dnspeer.HostPort(ports[5]),
			args: []string{"-conf", conf}})
	}
	figs := map[string]*figures{}
	for _, s := range servers {
		defer keepLog(o.logs, s)
		defer s.proc.Stop()
		figs[s.name] = &figures{}
	}
	table := func() [][]string { return rows(o, figs["portal"], figs["coredns"], coredns != "") }

	// Start each server alone, so the other's start does not share the CPU.
	probe := questions(kindClusterIP, d)[o.services-1]
	for _, s := range servers {
		f := figs[s.name]
		logf("starting %s", s.name)
		t0 := time.Now()
		if err := s.proc.Start(s.args...); err != nil {
			f.startErr = err
			continue
		}
		if f.start, f.startErr = firstCorrect(ctx, t0, s.addr, probe, o.startLimit, s.proc.Exited()); f.startErr != nil {
			f.startErr = fmt.Errorf("%w\n%s", f.startErr, portalproc.LastLines(s.proc.Log.String(), 10))
			logf("  %s: %v", s.name, f.startErr)
			continue
		}
		logf("  first correct answer after %s", f.start.Round(time.Millisecond))
		// Every slice must be in too before anything is measured.
		if err := waitSynced(ctx, s.addr, d, o.startLimit); err != nil {
			f.startErr = err
			logf("  %s: %v", s.name, err)
		}
	}
	if ctx.Err() != nil {
		return table(), ctx.Err()
	}

	for k := range numKinds {
		qs := questions(k, d)
		pool, err := packQuestions(qs)
		if err != nil {
			return table(), err
		}
		// Alternate which server goes first, so neither always meets the
		// machine right after the other's load.
		order := servers
		if k%2 == 1 && len(servers) == 2 {
			order = []*dnsServer{servers[1], servers[0]}
		}
		for _, s := range order {
			f := figs[s.name]
			if f.startErr != nil {
				continue
			}
			kf := &kindFigures{}
			f.loads[k] = kf
			logf("%s: %s", s.name, k)
			if kf.err = verify(ctx, s.addr, qs, o.timeout); kf.err != nil {
				logf("  %v", kf.err)
				continue
			}
			if o.warmup > 0 {
				if _, kf.err = runLoad(ctx, s.addr, pool, o.concurrency, o.warmup, o.timeout, o.maxQueries); kf.err != nil {
					logf("  warm-up: %v", kf.err)
					continue
				}
			}
			before := up.Queries()
			cpu0, cpuErr := s.proc.CPU()
			kf.res, kf.err = runLoad(ctx, s.addr, pool, o.concurrency, o.duration, o.timeout, o.maxQueries)
			kf.upstream = up.Queries() - before
			if cpu1, err := s.proc.CPU(); err == nil && cpuErr == nil {
				kf.cpu = cpu1 - cpu0
			}
			if kf.err != nil {
				logf("  %v", kf.err)
			} else {
				logf("  %.0f queries/s, %d timeouts, p50 %s p99 %s, %d upstream queries, server CPU %s", kf.res.qps(), kf.res.timeouts,
					latency(pct(kf.res.lat, 0.5)), latency(pct(kf.res.lat, 0.99)), kf.upstream, cpuCell(kf))
			}
			if o.dnsperf != "" && kf.err == nil {
				r, err := runDNSPerf(ctx, o.dnsperf, tmp, s.addr, qs, o.concurrency, o.perfOutstanding, o.duration, o.timeout)
				if err == nil {
					err = r.check(qs[0].want.rcode)
				}
				kf.perf, kf.perfErr = &r, err
				if err != nil {
					logf("  dnsperf: %v", err)
				} else {
					logf("  dnsperf: %.0f queries/s, %d lost, average latency %s", r.qps, r.lost, latency(r.avgLatency))
				}
			}
			if ctx.Err() != nil {
				return table(), ctx.Err()
			}
		}
	}
	for _, s := range servers {
		f := figs[s.name]
		if f.startErr != nil {
			continue
		}
		select {
		case <-s.proc.Exited():
			f.rssErr = errors.New("exited during the loads")
		default:
			if f.rss, f.rssErr = s.proc.RSSMB(); f.rssErr == nil {
				f.anon, f.file, f.rssErr = s.proc.RSSParts()
			}
			if o.profiles != "" && s.name == "portal" {
				// The metrics listener serves /debug/pprof on loopback.
				if err := saveHeap(ctx, "http://"+dnspeer.HostPort(ports[4])+"/debug/pprof/heap", filepath.Join(o.profiles, "portal-dns-heap.pprof")); err != nil {
					logf("  heap profile: %v", err)
				}
			}
		}
	}
	return table(), nil
}

// waitSynced polls until a sample of every cluster workload answers
// correctly.
func waitSynced(ctx context.Context, addr string, d *data, limit time.Duration) error {
	t0 := time.Now()
	for {
		var err error
		for k := range numKinds {
			if k.cluster() {
				if err = verify(ctx, addr, questions(k, d), time.Second); err != nil {
					break
				}
			}
		}
		if err == nil || ctx.Err() != nil || time.Since(t0) > limit {
			if err != nil {
				return fmt.Errorf("not every answer correct within %s: %w", limit, err)
			}
			return ctx.Err()
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// saveHeap writes the heap profile at url to path.
func saveHeap(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
