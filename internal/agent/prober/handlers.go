package prober

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// userAgent is what probed applications see; many match on the "kube-probe/"
// prefix to keep probes out of their access logs.
const userAgent = "kube-probe/1.37"

// maxBody bounds how much of an HTTP probe response is read.
const maxBody = 10 << 10

// maxRedirects bounds same-host redirects of an HTTP probe.
const maxRedirects = 10

// target is what a probe runs against: one container attempt.
type target struct {
	uid       types.UID
	container *v1.Container
	podIP     string
}

// prober runs probe handlers; it holds no per-container state.
type prober struct {
	exec   ExecFunc
	client *http.Client
}

func newProber(opts Options) *prober {
	var c http.Client
	if opts.HTTPClient != nil {
		c = *opts.HTTPClient
	} else {
		c.Transport = &http.Transport{
			// Probes target pod IPs directly, never through a proxy, and
			// check liveness of the endpoint, not its certificate.
			Proxy:             nil,
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // kubelet semantics
			DisableKeepAlives: true,
		}
	}
	c.CheckRedirect = sameHostRedirects
	return &prober{exec: opts.Exec, client: &c}
}

// sameHostRedirects follows redirects to the probed host only; a redirect
// elsewhere ends the probe with the 3xx response, which counts as success.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if req.URL.Hostname() != via[0].URL.Hostname() {
		return http.ErrUseLastResponse
	}
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	return nil
}

// run executes the handler of p once within ctx (which carries the probe
// timeout) and returns whether it succeeded and, if not, why.
func (pr *prober) run(ctx context.Context, p *v1.Probe, t target) (bool, string) {
	switch {
	case p.Exec != nil:
		return pr.runExec(ctx, p.Exec, t)
	case p.HTTPGet != nil:
		return pr.runHTTP(ctx, p.HTTPGet, t)
	case p.TCPSocket != nil:
		return runTCP(ctx, p.TCPSocket, t)
	case p.GRPC != nil:
		return runGRPC(ctx, p.GRPC, t)
	}
	return false, "missing probe handler"
}

// ResolvePort maps an int or named port to a port number using the
// container's declared ports (probes and lifecycle hooks share it).
func ResolvePort(port intstr.IntOrString, c *v1.Container) (int, error) {
	n := 0
	if port.Type == intstr.String {
		found := false
		for _, cp := range c.Ports {
			if cp.Name != "" && cp.Name == port.StrVal {
				n, found = int(cp.ContainerPort), true
				break
			}
		}
		if !found {
			// A number stored as a string is accepted, as kubelet does.
			v, err := strconv.Atoi(port.StrVal)
			if err != nil {
				return 0, fmt.Errorf("port %q not found in container", port.StrVal)
			}
			n = v
		}
	} else {
		n = int(port.IntVal)
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("invalid port number: %d", n)
	}
	return n, nil
}

func hostOr(host, podIP string) string {
	if host != "" {
		return host
	}
	return podIP
}

func (pr *prober) runHTTP(ctx context.Context, h *v1.HTTPGetAction, t target) (bool, string) {
	port, err := ResolvePort(h.Port, t.container)
	if err != nil {
		return false, err.Error()
	}
	scheme := strings.ToLower(string(h.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	u, err := url.Parse(h.Path)
	if err != nil {
		u = &url.URL{Path: h.Path}
	}
	u.Scheme = scheme
	u.Host = net.JoinHostPort(hostOr(h.Host, t.podIP), strconv.Itoa(port))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, err.Error()
	}
	for _, hd := range h.HTTPHeaders {
		if http.CanonicalHeaderKey(hd.Name) == "Host" {
			req.Host = hd.Value
			continue
		}
		req.Header.Add(hd.Name, hd.Value)
	}
	if _, ok := req.Header["User-Agent"]; !ok {
		req.Header.Set("User-Agent", userAgent)
	}
	if _, ok := req.Header["Accept"]; !ok {
		req.Header.Set("Accept", "*/*")
	}
	resp, err := pr.client.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode >= http.StatusOK && resp.StatusCode < http.StatusBadRequest {
		return true, ""
	}
	return false, fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode)
}

func runTCP(ctx context.Context, a *v1.TCPSocketAction, t target) (bool, string) {
	port, err := ResolvePort(a.Port, t.container)
	if err != nil {
		return false, err.Error()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(hostOr(a.Host, t.podIP), strconv.Itoa(port)))
	if err != nil {
		return false, err.Error()
	}
	_ = conn.Close()
	return true, ""
}

func (pr *prober) runExec(ctx context.Context, a *v1.ExecAction, t target) (bool, string) {
	if pr.exec == nil {
		return false, "exec probes are not supported by this runtime"
	}
	type result struct {
		out  []byte
		code int
		err  error
	}
	// ExecFunc should honour ctx; the select keeps a runtime that does not
	// from stalling the worker past the timeout.
	ch := make(chan result, 1)
	go func() {
		out, code, err := pr.exec(ctx, t.uid, t.container.Name, a.Command)
		ch <- result{out, code, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		r.err = ctx.Err()
	}
	if r.err != nil {
		if errors.Is(r.err, context.DeadlineExceeded) {
			return false, fmt.Sprintf("command %q timed out", strings.Join(a.Command, " "))
		}
		return false, r.err.Error()
	}
	if r.code == 0 {
		return true, ""
	}
	if msg := strings.TrimSpace(string(r.out)); msg != "" {
		return false, msg
	}
	return false, fmt.Sprintf("command %q exited with %d", strings.Join(a.Command, " "), r.code)
}

func runGRPC(ctx context.Context, a *v1.GRPCAction, t target) (bool, string) {
	port, err := ResolvePort(intstr.FromInt32(a.Port), t.container)
	if err != nil {
		return false, err.Error()
	}
	addr := net.JoinHostPort(t.podIP, strconv.Itoa(port))
	creds := insecure.NewCredentials()
	if a.Mode != nil && *a.Mode == v1.GRPCProbeModeTLS {
		creds = credentials.NewTLS(&tls.Config{InsecureSkipVerify: true}) //nolint:gosec // kubelet semantics
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent(userAgent),
		// Probes dial pod IPs directly, not through a proxy.
		grpc.WithNoProxy(),
	)
	if err != nil {
		return false, fmt.Sprintf("failed to connect service %q: %v", addr, err)
	}
	defer conn.Close()
	service := ""
	if a.Service != nil {
		service = *a.Service
	}
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		st, _ := status.FromError(err)
		switch st.Code() {
		case codes.Unimplemented:
			return false, fmt.Sprintf("this server does not implement the grpc health protocol (grpc.health.v1.Health): %s", st.Message())
		case codes.DeadlineExceeded:
			return false, fmt.Sprintf("timeout: health rpc did not complete within the probe timeout: %s", st.Message())
		}
		return false, fmt.Sprintf("error: health rpc probe failed: %v", err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return false, fmt.Sprintf("service unhealthy (responded with %q)", resp.GetStatus().String())
	}
	return true, ""
}
