package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/portal-net/portal/internal/netutil"
	"github.com/portal-net/portal/internal/testutil/portalproc"
)

// bare is the pod's server run directly: `portal-shim agnhost netexec` on
// loopback with no API, agent, supervisor or network namespace — the
// floor under a pod start.
type bare struct {
	portalproc.Process
	port int
}

var healthClient = &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// startBare execs a bare netexec on a free port and returns it once
// /healthz answers 200, with the time from exec to that answer.
func startBare(ctx context.Context, shim string, limit time.Duration) (*bare, time.Duration, error) {
	p, err := netutil.FreeLoopbackPorts(1)
	if err != nil {
		return nil, 0, err
	}
	// netexec also serves UDP, as in the pod: give it a free port too.
	udp, err := freeUDPPort()
	if err != nil {
		return nil, 0, err
	}
	b := &bare{Process: portalproc.Process{Bin: shim}, port: p[0]}
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", b.port)
	t0 := time.Now()
	if err := b.Start("agnhost", "netexec", "--http-port="+strconv.Itoa(b.port), "--udp-port="+strconv.Itoa(udp)); err != nil {
		return nil, 0, err
	}
	for time.Since(t0) < limit {
		if resp, err := healthClient.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return b, time.Since(t0), nil
			}
		}
		select {
		case <-b.Exited():
			return nil, 0, fmt.Errorf("bare netexec exited: %s", portalproc.LastLines(b.Log.String(), 5))
		case <-ctx.Done():
			b.Kill()
			return nil, 0, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	b.Kill()
	return nil, 0, fmt.Errorf("bare netexec not answering /healthz within %s", limit)
}

// pid finds the process in /proc (portalproc keeps its own pid to
// itself): our child serving this port.
func (b *bare) pid() int {
	procs, _ := readProcs()
	for _, p := range procs {
		if isChildWith(p, "--http-port="+strconv.Itoa(b.port)) {
			return p.pid
		}
	}
	return 0
}

// freeUDPPort returns a UDP port that was free a moment ago.
func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp", ":0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}
