package agent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	ref "k8s.io/client-go/tools/reference"

	"github.com/portal-net/portal/internal/agent/prober"
	"github.com/portal-net/portal/internal/podruntime"
)

type eventSink = typedcorev1.EventSinkImpl

// event records an event on the pod, or on one of its containers (the
// fieldPath kubectl describe shows), as kubelet does.
func (a *Agent) event(pod *corev1.Pod, container, eventType, reason, format string, args ...any) {
	r, err := ref.GetReference(scheme.Scheme, pod)
	if err != nil {
		return
	}
	if container != "" {
		r.FieldPath = fmt.Sprintf("spec.containers{%s}", container)
		for _, c := range pod.Spec.InitContainers {
			if c.Name == container {
				r.FieldPath = fmt.Sprintf("spec.initContainers{%s}", container)
			}
		}
	}
	a.rec.Eventf(r, eventType, reason, format, args...)
}

func (a *Agent) recordProbe(pod *corev1.Pod, eventType, reason, message string) {
	a.rec.Event(pod, eventType, reason, message)
}

// execProbe runs an exec probe command in the container.
func (a *Agent) execProbe(ctx context.Context, uid types.UID, container string, cmd []string) ([]byte, int, error) {
	var out limitedBuffer
	code, err := a.rt.Exec(ctx, uid, container, cmd, podruntime.ExecIO{Stdout: &out, Stderr: &out})
	return out.b, code, err
}

// limitedBuffer keeps the first 10 KiB of probe output, as kubelet does.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 10*1024 - len(l.b); room > 0 {
		if len(p) < room {
			room = len(p)
		}
		l.b = append(l.b, p[:room]...)
	}
	return len(p), nil
}

// runHook runs a lifecycle handler (preStop): exec in the container, an
// HTTP GET to the pod, or a sleep.
func (a *Agent) runHook(ctx context.Context, pod *corev1.Pod, c *corev1.Container, sb *podruntime.SandboxStatus, h *corev1.LifecycleHandler) error {
	switch {
	case h.Exec != nil:
		var out limitedBuffer
		code, err := a.rt.Exec(ctx, pod.UID, c.Name, h.Exec.Command, podruntime.ExecIO{Stdout: &out, Stderr: &out})
		if err != nil {
			return err
		}
		if code != 0 {
			return fmt.Errorf("command %q exited with %d: %s", strings.Join(h.Exec.Command, " "), code, out.b)
		}
		return nil
	case h.HTTPGet != nil:
		host := h.HTTPGet.Host
		if host == "" {
			if ips := a.podIPs(pod, sb); len(ips) > 0 {
				host = ips[0]
			}
		}
		port, err := prober.ResolvePort(h.HTTPGet.Port, c)
		if err != nil {
			return err
		}
		scheme := "http"
		if h.HTTPGet.Scheme == corev1.URISchemeHTTPS {
			scheme = "https"
		}
		path := h.HTTPGet.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+net.JoinHostPort(host, strconv.Itoa(port))+path, nil)
		if err != nil {
			return err
		}
		for _, hd := range h.HTTPGet.HTTPHeaders {
			req.Header.Add(hd.Name, hd.Value)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 400 {
			return fmt.Errorf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: %s", path, c.Name, pod.Name, resp.Status)
		}
		return nil
	case h.Sleep != nil:
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(h.Sleep.Seconds) * time.Second):
		}
		return nil
	}
	return nil
}
