package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/portal-net/portal/internal/proxy/userspace/sched"
)

// Agent configures `portal agent` (and the agent half of `portal up`).
type Agent struct {
	// NodeName is the Node this agent registers (default: the hostname).
	NodeName string
	// NodeIP is the node's InternalIP (default: the host's first
	// non-loopback IPv4 address).
	NodeIP string
	// Zone and Region become the topology.kubernetes.io labels.
	Zone   string
	Region string
	// Labels are extra node labels (key=value).
	Labels map[string]string

	// Kubeconfig points the agent at an API server (any Kubernetes API).
	Kubeconfig string
	// Server and Token join a portal server instead: the token carries the
	// hash of the server's CA, so the agent verifies the server without a
	// CA file and without an insecure mode.
	Server string
	Token  string

	// RootDir holds pod state, logs, volumes and IPAM records.
	RootDir string
	// RunDir holds runtime files that vanish at reboot (network namespaces).
	RunDir string
	// ShimBinary is the per-pod supervisor binary (default: portal-shim next
	// to this executable, else this executable).
	ShimBinary string

	// PodCIDR overrides the node's spec.podCIDR (normally assigned by the
	// controller manager).
	PodCIDR string
	// ClusterDNS and ClusterDomain go into pods' resolv.conf.
	ClusterDNS    []string
	ClusterDomain string
	// ResolvConf is the host resolv.conf that dnsPolicy Default copies.
	ResolvConf string

	// Port serves the agent's HTTPS API (logs, exec) to the API server.
	Port int
	// MaxPods is the pods capacity of the node.
	MaxPods int

	// NodeStatusUpdateFrequency is how often node status is written; the
	// node Lease is renewed every LeaseRenewInterval.
	NodeStatusUpdateFrequency time.Duration
	LeaseDuration             time.Duration
	LeaseRenewInterval        time.Duration
	// CrashBackoffInitial / CrashBackoffMax bound the restart back-off of
	// crashing containers (doubling).
	CrashBackoffInitial time.Duration
	CrashBackoffMax     time.Duration

	// ProxyMode is the service proxy datapath: "nftables" (default),
	// "iptables", "userspace", or "none" (no service proxy on this node).
	ProxyMode string
	// Scheduler is the userspace mode's default scheduler (sched.Names;
	// default rr); a service's portal.dev/scheduler annotation overrides it.
	Scheduler string
	// StableTCPTimestamps sets net.ipv4.tcp_timestamps=2 in the node's
	// network namespace (pods always get it): without per-connection
	// timestamp offsets a source port reused towards the same pod through
	// another service address is not refused by the pod's TIME_WAIT
	// socket (see sysctl.TCPTimestamps).
	StableTCPTimestamps bool
	// ServiceCIDR and ClusterCIDR are the cluster's service and pod ranges
	// (the proxy rejects unallocated service addresses and masquerades
	// traffic from outside the pod range).
	ServiceCIDR string
	ClusterCIDR string
	// ProxySyncPeriod forces a proxy sync even without changes (a full
	// rewrite at most every runner.DefaultFullSyncPeriod);
	// ProxyMinSyncPeriod spaces the syncs after changes.
	ProxySyncPeriod    time.Duration
	ProxyMinSyncPeriod time.Duration
	// HealthzBindAddress serves the proxy's /healthz and /livez (as
	// kube-proxy's 10256); MetricsBindAddress its Prometheus metrics. Empty
	// turns either off.
	HealthzBindAddress string
	MetricsBindAddress string
	// DNS serves the cluster's DNS on this node (NodeIP:DNSPort, UDP and
	// TCP) and publishes it as an endpoint of kube-system/kube-dns.
	DNS     bool
	DNSPort int
	// DNSAddress, when set (HOST:PORT), is where DNS is served instead of
	// the node address and DNSPort.
	DNSAddress string
	// DNSOnly runs only the DNS server (a drop-in cluster DNS for any
	// Kubernetes API): no node, pods or proxy, and no EndpointSlice of
	// its own (point a Service at it yourself).
	DNSOnly bool
	// DNSUpstreams answer names outside the cluster domain (default: the
	// nameservers of ResolvConf).
	DNSUpstreams []string
	// DNSTTL is the TTL of the cluster's answers (and their negative TTL).
	DNSTTL time.Duration
	// DNSAutopath answers a pod's first search-path query for an outside
	// name with the final answer (see internal/dns).
	DNSAutopath bool
	// DNSMetricsBindAddress serves the DNS server's Prometheus metrics
	// (CoreDNS's names; empty: off).
	DNSMetricsBindAddress string
	// LBAnnounce makes the node answer ARP/NDP for the LoadBalancer
	// addresses it is elected for (internal/lb/speaker), with heartbeats
	// to the other agents on LBHeartbeatPort (UDP) of the node address;
	// LBInterface fixes the interface (default: the one whose subnet holds
	// the address, else the node address's).
	LBAnnounce      bool
	LBInterface     string
	LBHeartbeatPort int
	// ProxyOnly runs only the service proxy (a drop-in kube-proxy): no node
	// registration, no pods, no pod network.
	ProxyOnly bool
}

// DefaultAgent returns the defaults of `portal agent`.
func DefaultAgent() Agent {
	return Agent{
		RootDir:                   filepath.Join(DefaultDataDir, "agent"),
		RunDir:                    "/run/portal",
		ClusterDNS:                []string{"10.0.0.10"},
		ClusterDomain:             "cluster.local",
		ResolvConf:                "/etc/resolv.conf",
		Port:                      10250,
		MaxPods:                   110,
		NodeStatusUpdateFrequency: 10 * time.Second,
		LeaseDuration:             40 * time.Second,
		LeaseRenewInterval:        10 * time.Second,
		CrashBackoffInitial:       10 * time.Second,
		CrashBackoffMax:           300 * time.Second,
		ProxyMode:                 "nftables",
		LBAnnounce:                true,
		LBHeartbeatPort:           7473,
		Scheduler:                 sched.Default,
		StableTCPTimestamps:       true,
		ServiceCIDR:               "10.0.0.0/24",
		ClusterCIDR:               "10.42.0.0/16",
		ProxySyncPeriod:           30 * time.Second,
		ProxyMinSyncPeriod:        100 * time.Millisecond,
		HealthzBindAddress:        "0.0.0.0:10256",
		MetricsBindAddress:        "127.0.0.1:10249",
		DNS:                       true,
		DNSPort:                   53,
		DNSTTL:                    5 * time.Second,
		DNSMetricsBindAddress:     "127.0.0.1:9153",
	}
}

// Complete fills in defaults that depend on the host.
func (a *Agent) Complete() {
	if a.NodeName == "" {
		h, _ := os.Hostname()
		a.NodeName = strings.ToLower(h)
	}
	if a.NodeIP == "" {
		a.NodeIP = HostIP().String()
	}
}

// Validate checks flag values.
func (a *Agent) Validate() error {
	var errs []error
	if a.NodeName == "" {
		errs = append(errs, errors.New("--node-name must not be empty"))
	}
	if net.ParseIP(a.NodeIP) == nil {
		errs = append(errs, fmt.Errorf("--node-ip %q is not an IP", a.NodeIP))
	}
	if a.Kubeconfig != "" && a.Server != "" {
		errs = append(errs, errors.New("--kubeconfig and --server are exclusive"))
	}
	if a.Server != "" && a.Token == "" {
		errs = append(errs, errors.New("--server needs --token (printed by `portal server` in <data-dir>/join-token)"))
	}
	if a.PodCIDR != "" {
		if _, _, err := net.ParseCIDR(a.PodCIDR); err != nil {
			errs = append(errs, fmt.Errorf("--pod-cidr: %w", err))
		}
	}
	for _, u := range a.DNSUpstreams {
		if _, err := ParseUpstream(u); err != nil {
			errs = append(errs, fmt.Errorf("--dns-upstream: %w", err))
		}
	}
	if a.DNSTTL < time.Second || a.DNSTTL > 24*time.Hour {
		errs = append(errs, fmt.Errorf("--dns-ttl %s is not between 1s and 24h", a.DNSTTL))
	}
	if a.DNSPort < 1 || a.DNSPort > 65535 {
		errs = append(errs, fmt.Errorf("--dns-port %d is not a port", a.DNSPort))
	}
	for _, d := range a.ClusterDNS {
		if net.ParseIP(d) == nil {
			errs = append(errs, fmt.Errorf("--cluster-dns %q is not an IP", d))
		}
	}
	if a.RootDir == "" || a.RunDir == "" {
		errs = append(errs, errors.New("--root-dir and --run-dir must not be empty"))
	}
	if a.DNSOnly && a.ProxyOnly {
		errs = append(errs, errors.New("--dns-only and --proxy-only exclude each other"))
	}
	if a.DNSAddress != "" {
		if _, err := netip.ParseAddrPort(a.DNSAddress); err != nil {
			errs = append(errs, fmt.Errorf("--dns-address %q: want IP:port", a.DNSAddress))
		}
	}
	if a.ProxyOnly && a.ProxyMode == "none" {
		errs = append(errs, errors.New("--proxy-only needs a --proxy-mode other than none"))
	}
	if a.ProxyMode != "nftables" && a.ProxyMode != "iptables" && a.ProxyMode != "userspace" && a.ProxyMode != "none" {
		errs = append(errs, fmt.Errorf("--proxy-mode %q: want nftables, iptables, userspace or none", a.ProxyMode))
	}
	if _, err := sched.New(a.Scheduler); err != nil {
		errs = append(errs, fmt.Errorf("--scheduler: %w", err))
	}
	for flag, v := range map[string]string{"--service-cidr": a.ServiceCIDR, "--cluster-cidr": a.ClusterCIDR} {
		if _, _, err := net.ParseCIDR(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", flag, err))
		}
	}
	if a.LBHeartbeatPort <= 0 || a.LBHeartbeatPort > 65535 {
		errs = append(errs, fmt.Errorf("--lb-heartbeat-port %d out of range", a.LBHeartbeatPort))
	}
	if a.Port < 0 || a.Port > 65535 {
		errs = append(errs, fmt.Errorf("--agent-port %d out of range", a.Port))
	}
	if a.CrashBackoffInitial <= 0 || a.CrashBackoffMax < a.CrashBackoffInitial {
		errs = append(errs, errors.New("--crash-backoff-initial must be > 0 and ≤ --crash-backoff-max"))
	}
	return errors.Join(errs...)
}

// HostIP is the host's first global-unicast IPv4 address, else 127.0.0.1.
// The pod bridge and pod veths are not the host's address.
func HostIP() net.IP {
	ifaces, err := net.Interfaces()
	if err == nil {
		for _, ifc := range ifaces {
			if ifc.Name == "portal0" || strings.HasPrefix(ifc.Name, "veth") || ifc.Flags&net.FlagUp == 0 {
				continue
			}
			addrs, err := ifc.Addrs()
			if err != nil {
				continue
			}
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
					return n.IP
				}
			}
		}
	}
	return net.IPv4(127, 0, 0, 1)
}

// ParseUpstream reads a DNS upstream: IP or IP:port (port 53 by default).
func ParseUpstream(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not an IP or IP:port", s)
	}
	return netip.AddrPortFrom(ip.Unmap(), 53), nil
}
