package config

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Server configures `portal server` (and the server half of `portal up`).
type Server struct {
	// DataDir holds the embedded etcd data, certificates and the admin
	// kubeconfig.
	DataDir string
	// BindAddress and SecurePort are where the API is served (HTTPS).
	BindAddress string
	SecurePort  int
	// AdvertiseAddress is the address other nodes and the kubernetes
	// service's endpoints use to reach this server. Empty: the first
	// non-loopback address of the host, else 127.0.0.1.
	AdvertiseAddress string
	// ExtraSANs are added to the serving certificate.
	ExtraSANs []string

	// EtcdServers, when set, points at an external etcd cluster instead of
	// the embedded one.
	EtcdServers  []string
	EtcdCAFile   string
	EtcdCertFile string
	EtcdKeyFile  string
	EtcdPrefix   string
	// EtcdClientPort / EtcdPeerPort of the embedded etcd (loopback only).
	EtcdClientPort int
	EtcdPeerPort   int

	ServiceCIDR   string
	NodePortRange string
	ClusterDomain string

	// Controllers configures the controller manager and scheduler.
	Controllers Controllers

	// KubeconfigPath is where the admin kubeconfig is written.
	KubeconfigPath string

	// RepairInterval is how often allocations are reconciled with the
	// stored services (also once at start).
	RepairInterval time.Duration
	// RepairMinAge: an allocation no stored service claims is released only
	// once it is this old, so creates in flight keep theirs.
	RepairMinAge time.Duration
}

// DefaultDataDir is where state lives when --data-dir is not given.
const DefaultDataDir = "/var/lib/portal"

// DefaultServer returns the defaults of `portal server`.
func DefaultServer() Server {
	return Server{
		DataDir:        DefaultDataDir,
		BindAddress:    "0.0.0.0",
		SecurePort:     6443,
		EtcdPrefix:     "/registry",
		EtcdClientPort: 2379,
		EtcdPeerPort:   2380,
		ServiceCIDR:    "10.0.0.0/24",
		NodePortRange:  "30000-32767",
		Controllers:    DefaultControllers(),
		ClusterDomain:  "cluster.local",
		RepairInterval: 3 * time.Minute,
		RepairMinAge:   time.Minute,
	}
}

// Kubeconfig returns the admin kubeconfig path.
func (s *Server) Kubeconfig() string {
	if s.KubeconfigPath != "" {
		return s.KubeconfigPath
	}
	return filepath.Join(s.DataDir, "kubeconfig")
}

// Validate checks flag values.
func (s *Server) Validate() error {
	var errs []error
	if s.DataDir == "" {
		errs = append(errs, errors.New("--data-dir must not be empty"))
	}
	if s.SecurePort < 0 || s.SecurePort > 65535 {
		errs = append(errs, fmt.Errorf("--secure-port %d out of range", s.SecurePort))
	}
	if _, err := s.ServiceNet(); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := ParsePortRange(s.NodePortRange); err != nil {
		errs = append(errs, fmt.Errorf("--service-node-port-range: %w", err))
	}
	if err := s.Controllers.Validate(); err != nil {
		errs = append(errs, err)
	}
	if s.AdvertiseAddress != "" && net.ParseIP(s.AdvertiseAddress) == nil {
		errs = append(errs, fmt.Errorf("--advertise-address %q is not an IP", s.AdvertiseAddress))
	}
	return errors.Join(errs...)
}

// ServiceNet parses ServiceCIDR.
func (s *Server) ServiceNet() (*net.IPNet, error) {
	_, n, err := net.ParseCIDR(s.ServiceCIDR)
	if err != nil {
		return nil, fmt.Errorf("--service-cidr: %w", err)
	}
	if ones, bits := n.Mask.Size(); bits-ones < 3 {
		return nil, fmt.Errorf("--service-cidr %s is too small", s.ServiceCIDR)
	}
	return n, nil
}

// ParsePortRange parses "30000-32767" or "30000+2768" into base and size.
func ParsePortRange(s string) (base, size int, err error) {
	if i := strings.IndexAny(s, "-+"); i > 0 {
		a, errA := strconv.Atoi(s[:i])
		b, errB := strconv.Atoi(s[i+1:])
		if errA == nil && errB == nil {
			if s[i] == '+' {
				b = a + b - 1
			}
			if a >= 1 && b <= 65535 && a <= b {
				return a, b - a + 1, nil
			}
		}
	}
	return 0, 0, fmt.Errorf("invalid port range %q (want e.g. 30000-32767)", s)
}

// ClusterDNSIP is the 10th address of the service range, the ClusterIP of
// kube-dns (as in Kubernetes), which pods get as their nameserver.
func (s *Server) ClusterDNSIP() net.IP {
	n, err := s.ServiceNet()
	if err != nil {
		return nil
	}
	ip := make(net.IP, len(n.IP.To4()))
	copy(ip, n.IP.To4())
	ip[len(ip)-1] += 10
	return ip
}
