// Package proxy serves the pods/proxy and services/proxy subresources:
// kube-apiserver's HTTP proxy to a pod port, or to a ready endpoint of a
// service port, with upgrades (websockets) passed through. Names follow
// upstream: "pod", "pod:port", "https:pod:port"; "svc:port-name-or-number",
// "https:svc:port". The API server dials pod addresses itself, so it
// needs a route to the pod network (every node has one; a server that is
// not a node needs the nodes' pod CIDRs routed through them, as the
// conformance lab sets up).
package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/portal-net/portal/internal/api/core"
)

// transport dials pods. Like kube-apiserver's proxy transport, it does not
// verify pods' serving certificates (no CA could vouch for them).
var transport = &http.Transport{
	Proxy:               nil,
	DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	TLSHandshakeTimeout: 10 * time.Second,
	IdleConnTimeout:     90 * time.Second,
	MaxIdleConnsPerHost: 10,
	TLSClientConfig:     &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // see above
}

var methods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}

// handler proxies to loc, upgrades included.
func handler(loc *url.URL, responder rest.Responder) http.Handler {
	h := proxy.NewUpgradeAwareHandler(loc, transport, true, false, proxy.NewErrorResponder(responder))
	h.UseRequestLocation = false
	return h
}

// Pods serves pods/proxy.
type Pods struct{ Pods rest.Getter }

var _ rest.Connecter = &Pods{}

// New implements rest.Storage.
func (p *Pods) New() runtime.Object { return &corev1.Pod{} }

// Destroy implements rest.Storage.
func (p *Pods) Destroy() {}

// NewConnectOptions implements rest.Connecter: the rest of the URL is the
// path on the pod.
func (p *Pods) NewConnectOptions() (runtime.Object, bool, string) {
	return &corev1.PodProxyOptions{}, true, "path"
}

// ConnectMethods implements rest.Connecter.
func (p *Pods) ConnectMethods() []string { return methods }

// Connect proxies to the pod.
func (p *Pods) Connect(ctx context.Context, id string, options runtime.Object, responder rest.Responder) (http.Handler, error) {
	opts, ok := options.(*corev1.PodProxyOptions)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid options object: %T", options))
	}
	scheme, name, port, valid := utilnet.SplitSchemeNamePort(id)
	if !valid {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid pod request %q", id))
	}
	obj, err := p.Pods.Get(ctx, name, &metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	pod := obj.(*corev1.Pod)
	if pod.Status.PodIP == "" {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("pod %s has no IP address yet", name))
	}
	if port != "" {
		if port, err = podPort(pod, port); err != nil {
			return nil, err
		}
	} else {
		port = firstPort(pod)
	}
	loc := &url.URL{Scheme: scheme, Host: hostPort(pod.Status.PodIP, port), Path: opts.Path}
	if loc.Scheme == "" {
		loc.Scheme = "http"
	}
	return handler(loc, responder), nil
}

// firstPort is the port of a request that names none: the first port a
// container declares, as kube-apiserver picks it ("" when none does: the
// scheme's default).
func firstPort(pod *corev1.Pod) string {
	for _, c := range pod.Spec.Containers {
		if len(c.Ports) > 0 {
			return strconv.Itoa(int(c.Ports[0].ContainerPort))
		}
	}
	return ""
}

// podPort resolves a port number or a container port name.
func podPort(pod *corev1.Pod, port string) (string, error) {
	if n, err := strconv.Atoi(port); err == nil && n > 0 && n < 65536 {
		return port, nil
	}
	for _, c := range pod.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == port {
				return strconv.Itoa(int(cp.ContainerPort)), nil
			}
		}
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("pod %s has no port %q", pod.Name, port))
}

func hostPort(ip, port string) string {
	if port == "" {
		if net.ParseIP(ip).To4() == nil {
			return "[" + ip + "]"
		}
		return ip
	}
	return net.JoinHostPort(ip, port)
}

// Services serves services/proxy: a random ready endpoint of the port.
type Services struct {
	Services  rest.Getter
	Endpoints rest.Getter
}

var _ rest.Connecter = &Services{}

// New implements rest.Storage.
func (s *Services) New() runtime.Object { return &core.Service{} }

// Destroy implements rest.Storage.
func (s *Services) Destroy() {}

// NewConnectOptions implements rest.Connecter.
func (s *Services) NewConnectOptions() (runtime.Object, bool, string) {
	return &corev1.ServiceProxyOptions{}, true, "path"
}

// ConnectMethods implements rest.Connecter.
func (s *Services) ConnectMethods() []string { return methods }

// Connect proxies to an endpoint of the service port.
func (s *Services) Connect(ctx context.Context, id string, options runtime.Object, responder rest.Responder) (http.Handler, error) {
	opts, ok := options.(*corev1.ServiceProxyOptions)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid options object: %T", options))
	}
	scheme, name, portStr, valid := utilnet.SplitSchemeNamePort(id)
	if !valid {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid service request %q", id))
	}
	obj, err := s.Services.Get(ctx, name, &metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	svc := obj.(*core.Service)
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("no endpoints for ExternalName service %q", name))
	}
	var ep *corev1.Endpoints
	if obj, err = s.Endpoints.Get(ctx, name, &metav1.GetOptions{}); err == nil {
		ep = obj.(*corev1.Endpoints)
	} else if !apierrors.IsNotFound(err) {
		return nil, err
	}
	targets, err := endpointsFor(svc, ep, portStr)
	if err != nil {
		return nil, err
	}
	t := targets[rand.IntN(len(targets))]
	loc := &url.URL{Scheme: scheme, Host: t, Path: opts.Path}
	if loc.Scheme == "" {
		loc.Scheme = "http"
	}
	return handler(loc, responder), nil
}

// AddConversions registers the query-parameter decoding of the proxy
// options (only "path", which the subresource path also sets).
func AddConversions(s *runtime.Scheme) error {
	if err := s.AddConversionFunc((*url.Values)(nil), (*corev1.PodProxyOptions)(nil), func(a, b any, _ conversion.Scope) error {
		b.(*corev1.PodProxyOptions).Path = (*a.(*url.Values)).Get("path")
		return nil
	}); err != nil {
		return err
	}
	return s.AddConversionFunc((*url.Values)(nil), (*corev1.ServiceProxyOptions)(nil), func(a, b any, _ conversion.Scope) error {
		b.(*corev1.ServiceProxyOptions).Path = (*a.(*url.Values)).Get("path")
		return nil
	})
}

// endpointsFor lists the host:port targets of the service port named or
// numbered port (or the only port when port is empty) among the ready
// addresses of ep (nil: none).
func endpointsFor(svc *core.Service, ep *corev1.Endpoints, port string) ([]string, error) {
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if p.Name == port || (port != "" && strconv.Itoa(int(p.Port)) == port) || (port == "" && len(svc.Spec.Ports) == 1) {
			sp = p
			break
		}
	}
	if sp == nil {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("no service port %q found for service %q", port, svc.Name))
	}
	var targets []string
	if ep != nil {
		for _, subset := range ep.Subsets {
			for _, p := range subset.Ports {
				if p.Name != sp.Name || p.Protocol != sp.Protocol {
					continue
				}
				for _, a := range subset.Addresses {
					targets = append(targets, net.JoinHostPort(a.IP, strconv.Itoa(int(p.Port))))
				}
			}
		}
	}
	if len(targets) == 0 {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("no endpoints available for service %q", svc.Name))
	}
	return targets, nil
}
