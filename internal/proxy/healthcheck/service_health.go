package healthcheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// Healthier reports whether the proxy itself is healthy; *ProxyHealth is
// one.
type Healthier interface {
	IsHealthy() bool
}

// ServiceHealthConfig configures a ServiceHealthServer.
type ServiceHealthConfig struct {
	// NodeIPs are the addresses the health check ports answer on; empty
	// means every address of the node.
	NodeIPs []netip.Addr
	// Listen opens the listeners; nil means net.Listen.
	Listen ListenFunc
	// Proxy, when set, makes every service unhealthy while the proxy is
	// (its rules may be stale), as kube-proxy does.
	Proxy Healthier
}

// ServiceHealthServer runs one HTTP server per service with
// externalTrafficPolicy Local and a healthCheckNodePort, answering 200 when
// this node has a local endpoint for it and 503 otherwise, so an external
// load balancer sends traffic only to nodes that can serve it.
type ServiceHealthServer struct {
	cfg ServiceHealthConfig

	mu       sync.Mutex
	services map[types.NamespacedName]*hcService
	counts   map[types.NamespacedName]int
	wg       sync.WaitGroup
}

type hcService struct {
	port    uint16
	servers []*http.Server
}

// NewServiceHealthServer returns a server with no services.
func NewServiceHealthServer(cfg ServiceHealthConfig) *ServiceHealthServer {
	if cfg.Listen == nil {
		cfg.Listen = net.Listen
	}
	return &ServiceHealthServer{cfg: cfg, services: map[types.NamespacedName]*hcService{}, counts: map[types.NamespacedName]int{}}
}

// SyncServices makes the set of health check servers match want (service →
// healthCheckNodePort). Servers of services gone, or whose port changed,
// are closed; new ones are opened. A port that cannot be bound is logged
// and tried again on the next call; the returned error lists such ports,
// and the other services are served regardless.
func (s *ServiceHealthServer) SyncServices(want map[types.NamespacedName]uint16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for nn, svc := range s.services {
		if port, ok := want[nn]; ok && port == svc.port {
			continue
		}
		klog.V(2).InfoS("Closing health check port", "service", nn, "port", svc.port)
		svc.close()
		delete(s.services, nn)
	}
	var errs []error
	for nn, port := range want {
		if _, ok := s.services[nn]; ok || port == 0 {
			continue
		}
		svc, err := s.open(nn, port)
		if err != nil {
			klog.ErrorS(err, "Opening health check port failed; retrying at next sync", "service", nn, "port", port)
			errs = append(errs, err)
			continue
		}
		klog.V(2).InfoS("Opened health check port", "service", nn, "port", port)
		s.services[nn] = svc
	}
	return errors.Join(errs...)
}

// open binds every address of one service; on any failure it binds none,
// so the next sync starts over.
func (s *ServiceHealthServer) open(nn types.NamespacedName, port uint16) (*hcService, error) {
	addrs := []string{net.JoinHostPort("", strconv.Itoa(int(port)))}
	if len(s.cfg.NodeIPs) > 0 {
		addrs = addrs[:0]
		for _, ip := range s.cfg.NodeIPs {
			addrs = append(addrs, netip.AddrPortFrom(ip, port).String())
		}
	}
	svc := &hcService{port: port}
	h := s.handler(nn)
	var lns []net.Listener
	for _, a := range addrs {
		ln, err := s.cfg.Listen("tcp", a)
		if err != nil {
			for _, l := range lns {
				_ = l.Close()
			}
			return nil, fmt.Errorf("healthcheck: service %s: listen on %s: %w", nn, a, err)
		}
		lns = append(lns, ln)
	}
	for _, ln := range lns {
		srv := newServer(h)
		svc.servers = append(svc.servers, srv)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				klog.ErrorS(err, "Health check server stopped", "service", nn, "address", ln.Addr())
			}
		}()
	}
	return svc, nil
}

func (svc *hcService) close() {
	for _, srv := range svc.servers {
		_ = srv.Close()
	}
}

// SyncEndpoints sets the number of local endpoints of every service;
// services missing from counts have none.
func (s *ServiceHealthServer) SyncEndpoints(counts map[types.NamespacedName]int) {
	c := make(map[types.NamespacedName]int, len(counts))
	for nn, n := range counts {
		c[nn] = n
	}
	s.mu.Lock()
	s.counts = c
	s.mu.Unlock()
}

// Close stops every server and waits for them.
func (s *ServiceHealthServer) Close() {
	s.mu.Lock()
	for nn, svc := range s.services {
		svc.close()
		delete(s.services, nn)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

type serviceHealthBody struct {
	Service struct {
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"service"`
	LocalEndpoints      int  `json:"localEndpoints"`
	ServiceProxyHealthy bool `json:"serviceProxyHealthy"`
}

// handler answers any path and method: load balancers probe with their own.
func (s *ServiceHealthServer) handler(nn types.NamespacedName) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		n := s.counts[nn]
		s.mu.Unlock()
		var b serviceHealthBody
		b.Service.Namespace, b.Service.Name = nn.Namespace, nn.Name
		b.LocalEndpoints = n
		b.ServiceProxyHealthy = s.cfg.Proxy == nil || s.cfg.Proxy.IsHealthy()
		code := http.StatusOK
		if n == 0 || !b.ServiceProxyHealthy {
			code = http.StatusServiceUnavailable
		}
		body, _ := json.Marshal(b)
		writeJSON(w, code, body)
	})
}
