package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/portal-net/portal/internal/testutil/portalproc"
)

// proxy is one service proxy under test in one mode.
type proxy struct {
	// name is "portal" or "kube-proxy"; mode "nftables" or "iptables".
	name, mode string
	bin        string
	proc       portalproc.Process
	metrics    string // metrics URL
	// startProfiled is closed when the start-up CPU profile is written
	// (nil: none taken); the process can run one CPU profile at a time.
	startProfiled chan struct{}
}

func (p *proxy) String() string { return p.name + " " + p.mode }

// proxyArgs are a proxy's command lines: the same API, node, cluster CIDR,
// loopback-only metrics and health ports and no periodic full resync
// during a measurement. minSync 0 keeps each proxy's own default.
func proxyArgs(name, mode, kubeconfig string, metricsPort, healthzPort int, minSync time.Duration) []string {
	metrics := "127.0.0.1:" + strconv.Itoa(metricsPort)
	healthz := "127.0.0.1:" + strconv.Itoa(healthzPort)
	var args []string
	switch name {
	case "portal":
		args = []string{"agent", "--proxy-only", "--kubeconfig", kubeconfig, "--node-name", nodeName,
			"--node-ip", nodeIP, "--proxy-mode", mode, "--service-cidr", serviceCIDR.String(),
			"--cluster-cidr", clusterCIDR, "--metrics-bind-address", metrics, "--healthz-bind-address", healthz,
			"--sync-period", "1h"}
	default:
		// The conntrack settings are the host's business, not this
		// namespace's: 0 leaves them alone.
		args = []string{"--kubeconfig", kubeconfig, "--hostname-override", nodeName, "--proxy-mode", mode,
			"--cluster-cidr", clusterCIDR, "--metrics-bind-address", metrics, "--healthz-bind-address", healthz,
			// The iptables-* period flags set the nftables mode's too.
			"--iptables-sync-period", "1h", "--conntrack-max-per-core", "0",
			"--conntrack-tcp-timeout-established", "0", "--conntrack-tcp-timeout-close-wait", "0"}
	}
	if minSync > 0 {
		flag := "--min-sync-period"
		if name != "portal" {
			flag = "--iptables-min-sync-period"
		}
		args = append(args, flag, minSync.String())
	}
	return args
}

// start execs the proxy and returns the time from exec until its first
// sync is done, as its own metric says. With a profile path, a CPU
// profile of the start-up is written there: from the moment the metrics
// listener answers (before the informers have listed anything) for
// profileFor.
func (p *proxy) start(ctx context.Context, args []string, limit time.Duration, profile string, profileFor time.Duration) (time.Duration, error) {
	p.proc = portalproc.Process{Bin: p.bin}
	t0 := time.Now()
	if err := p.proc.Start(args...); err != nil {
		return 0, err
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := t0.Add(limit)
	p.startProfiled = nil
	if profile != "" {
		p.startProfiled = make(chan struct{})
		go saveStartProfile(ctx, p.startProfiled, p.proc.Exited(), strings.TrimSuffix(p.metrics, "/metrics")+"/debug/pprof/profile?seconds="+strconv.Itoa(int(profileFor/time.Second)), profile, deadline)
	}
	for time.Now().Before(deadline) {
		select {
		case <-p.proc.Exited():
			log := p.proc.Log.String()
			return 0, fmt.Errorf("%s exited before its first sync: %s\n%s", p, portalproc.LastLines(log, 1), portalproc.LastLines(log, 20))
		case <-ctx.Done():
			return 0, ctx.Err()
		default:
		}
		if m, err := scrape(ctx, hc, p.metrics); err == nil && value(m, metricLastSync) > 0 {
			return time.Since(t0), nil
		}
		// Each scrape costs the proxy a /proc read in its process
		// collector: every 5 ms that was a tenth of its start-up CPU.
		time.Sleep(20 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s: no sync within %s:\n%s", p, limit, portalproc.LastLines(p.proc.Log.String(), 20))
}

// saveStartProfile asks for the CPU profile at url as soon as the
// listener takes connections and writes it to path. It gives up when the
// process exits: the next proxy listens on the same port.
func saveStartProfile(ctx context.Context, done chan<- struct{}, exited <-chan struct{}, url, path string, deadline time.Time) {
	defer close(done)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-exited:
			return
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			// Not listening yet.
			time.Sleep(2 * time.Millisecond)
			continue
		}
		defer resp.Body.Close()
		if data, err := io.ReadAll(resp.Body); err == nil && resp.StatusCode == http.StatusOK {
			_ = os.WriteFile(path, data, 0o644)
		}
		return
	}
}

// stop ends the proxy and removes what rules it left, so the next one
// starts on an empty ruleset: kube-proxy's own --cleanup, then every
// table of either proxy and finally the whole ruleset of this namespace,
// which holds nothing else (iptables rules are nftables tables too).
func (p *proxy) stop(ctx context.Context) error {
	p.proc.Stop()
	var errs []error
	if p.name == "kube-proxy" {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		out, err := exec.CommandContext(cctx, p.bin, "--cleanup").CombinedOutput()
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("kube-proxy --cleanup: %w\n%s", err, portalproc.LastLines(string(out), 5)))
		}
	}
	flushRules()
	_ = exec.CommandContext(ctx, "conntrack", "-F").Run()
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// flushRules deletes the proxies' tables and then anything else in this
// namespace's ruleset (it is ours alone).
func flushRules() {
	for _, t := range [][]string{{"ip", "portal-proxy"}, {"ip", "kube-proxy"}, {"ip6", "kube-proxy"}} {
		_ = exec.Command("nft", "delete", "table", t[0], t[1]).Run()
	}
	_ = exec.Command("nft", "flush", "ruleset").Run()
}

// settle waits until the proxy's last sync is quiet for quiet (bounded by
// limit), so a latency run does not share the CPU with a sync.
func settle(ctx context.Context, p *proxy, quiet, limit time.Duration) {
	hc := &http.Client{Timeout: 2 * time.Second}
	var last float64
	since := time.Now()
	for deadline := time.Now().Add(limit); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(100 * time.Millisecond) {
		m, err := scrape(ctx, hc, p.metrics)
		if err != nil {
			continue
		}
		if v := value(m, metricLastSync); v != last {
			last, since = v, time.Now()
		}
		if time.Since(since) >= quiet {
			return
		}
	}
}
