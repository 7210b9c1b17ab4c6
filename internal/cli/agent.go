package cli

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/portal-net/portal/internal/agent"
	"github.com/portal-net/portal/internal/config"
	"github.com/portal-net/portal/internal/proxy/userspace/sched"
)

// bindNodeFlags are the agent flags `portal up` shares with `portal agent`.
func bindNodeFlags(fs *pflag.FlagSet, c *config.Agent) {
	fs.StringVar(&c.NodeName, "node-name", c.NodeName, "Name of this node (default: the hostname)")
	fs.StringVar(&c.NodeIP, "node-ip", c.NodeIP, "InternalIP of this node (default: the host's first non-loopback IPv4 address)")
	fs.StringVar(&c.Zone, "zone", c.Zone, "topology.kubernetes.io/zone label of this node")
	fs.StringVar(&c.Region, "region", c.Region, "topology.kubernetes.io/region label of this node")
	fs.StringToStringVar(&c.Labels, "node-labels", c.Labels, "Extra labels of this node (k=v,...)")
	fs.IntVar(&c.Port, "agent-port", c.Port, "HTTPS port of the agent API (logs, exec) the API server connects to")
	fs.IntVar(&c.MaxPods, "max-pods", c.MaxPods, "Pods capacity of this node")
	fs.StringVar(&c.RunDir, "run-dir", c.RunDir, "Directory for runtime files (network namespaces)")
	fs.StringVar(&c.ShimBinary, "shim", c.ShimBinary, "Per-pod supervisor binary (default: portal-shim next to this binary, else this binary)")
	fs.BoolVar(&c.ProxyOnly, "proxy-only", c.ProxyOnly, "Run only the service proxy (a drop-in kube-proxy, e.g. with --kubeconfig of any cluster): no node registration, no pods")
	fs.StringVar(&c.ProxyMode, "proxy-mode", c.ProxyMode, "Service proxy datapath: nftables, iptables, userspace, or none")
	fs.StringVar(&c.Scheduler, "scheduler", c.Scheduler, "Userspace proxy mode's scheduler: "+strings.Join(sched.Names, ", ")+" (a service's portal.dev/scheduler annotation overrides it)")
	fs.BoolVar(&c.LBAnnounce, "lb-announce", c.LBAnnounce, "Answer ARP/NDP for the LoadBalancer addresses this node is elected for (one node per address; another takes over within about a second when it dies)")
	fs.StringVar(&c.LBInterface, "lb-interface", c.LBInterface, "Interface to announce LoadBalancer addresses on (default: the one whose subnet holds the address, else the node address's)")
	fs.IntVar(&c.LBHeartbeatPort, "lb-heartbeat-port", c.LBHeartbeatPort, "UDP port (on the node address) of the heartbeats between agents that elect the announcing node; the same on every node")
	fs.BoolVar(&c.StableTCPTimestamps, "stable-tcp-timestamps", c.StableTCPTimestamps, "Set net.ipv4.tcp_timestamps=2 on the node (TCP timestamps without per-connection offsets), so short connections to a pod through two services never stall on a SYN retransmit; false keeps the host's setting")
	fs.DurationVar(&c.ProxySyncPeriod, "sync-period", c.ProxySyncPeriod, "How often the service proxy syncs even without changes (a full rewrite of its rules at most hourly)")
	fs.DurationVar(&c.ProxyMinSyncPeriod, "min-sync-period", c.ProxyMinSyncPeriod, "Shortest time between two service proxy syncs")
	fs.StringVar(&c.HealthzBindAddress, "healthz-bind-address", c.HealthzBindAddress, "Address of the service proxy's /healthz and /livez (empty: off)")
	fs.StringVar(&c.MetricsBindAddress, "metrics-bind-address", c.MetricsBindAddress, "Address of the service proxy's Prometheus /metrics (empty: off)")
	fs.BoolVar(&c.DNS, "dns", c.DNS, "Serve the cluster's DNS on this node (node IP, --dns-port) as an endpoint of kube-system/kube-dns")
	fs.IntVar(&c.DNSPort, "dns-port", c.DNSPort, "Port of the node's DNS server (UDP and TCP)")
	fs.StringVar(&c.DNSAddress, "dns-address", c.DNSAddress, "IP:port to serve DNS on instead of the node address and --dns-port")
	fs.BoolVar(&c.DNSOnly, "dns-only", c.DNSOnly, "Run only the cluster DNS server (a drop-in cluster DNS, e.g. with --kubeconfig of any cluster): no node registration, pods or proxy, no EndpointSlice of its own")
	fs.StringSliceVar(&c.DNSUpstreams, "dns-upstream", c.DNSUpstreams, "Resolvers for names outside --cluster-domain, IP or IP:port (default: the nameservers of --resolv-conf)")
	fs.DurationVar(&c.DNSTTL, "dns-ttl", c.DNSTTL, "TTL of the cluster's DNS answers, also their negative TTL")
	fs.BoolVar(&c.DNSAutopath, "dns-autopath", c.DNSAutopath, "Answer a pod's first search-path query for an outside name with the final answer (one query instead of up to five; changes the answer of a deliberate query for a missing name in the pod's own namespace)")
	fs.StringVar(&c.DNSMetricsBindAddress, "dns-metrics-bind-address", c.DNSMetricsBindAddress, "Address of the DNS server's Prometheus /metrics (CoreDNS's names; empty: off)")
	fs.DurationVar(&c.CrashBackoffInitial, "crash-backoff-initial", c.CrashBackoffInitial, "First restart delay of a crashing container (doubles up to --crash-backoff-max)")
	fs.DurationVar(&c.CrashBackoffMax, "crash-backoff-max", c.CrashBackoffMax, "Longest restart delay of a crashing container")
	_ = fs.MarkHidden("crash-backoff-initial")
	_ = fs.MarkHidden("crash-backoff-max")
}

func bindAgentFlags(fs *pflag.FlagSet, c *config.Agent) {
	bindNodeFlags(fs, c)
	fs.StringVar(&c.Kubeconfig, "kubeconfig", c.Kubeconfig, "kubeconfig of the API server (any Kubernetes API)")
	fs.StringVar(&c.Server, "server", c.Server, "URL of the portal server to join (https://HOST:6443)")
	fs.StringVar(&c.Token, "token", c.Token, "Join token (the server writes it to <data-dir>/join-token)")
	fs.StringVar(&c.RootDir, "root-dir", c.RootDir, "Directory for pod state, logs, volumes and IP allocations")
	fs.StringVar(&c.PodCIDR, "pod-cidr", c.PodCIDR, "Pod CIDR of this node (default: assigned by the controller manager)")
	fs.StringSliceVar(&c.ClusterDNS, "cluster-dns", c.ClusterDNS, "Nameserver IPs pods get with dnsPolicy ClusterFirst")
	fs.StringVar(&c.ClusterDomain, "cluster-domain", c.ClusterDomain, "DNS domain of the cluster")
	fs.StringVar(&c.ResolvConf, "resolv-conf", c.ResolvConf, "Host resolv.conf that dnsPolicy Default copies")
	fs.StringVar(&c.ServiceCIDR, "service-cidr", c.ServiceCIDR, "Range of Service ClusterIPs (as the server's --service-cidr)")
	fs.StringVar(&c.ClusterCIDR, "cluster-cidr", c.ClusterCIDR, "Pod range of the whole cluster (as the server's --cluster-cidr)")
	fs.DurationVar(&c.NodeStatusUpdateFrequency, "node-status-update-frequency", c.NodeStatusUpdateFrequency, "How often the node status is reported")
}

func newAgentCommand() *cobra.Command {
	c := config.DefaultAgent()
	c.Kubeconfig = defaultKubeconfig()
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the node agent: join a server (--server, --token) or any Kubernetes API (--kubeconfig) and run its pods",
		RunE: func(cmd *cobra.Command, args []string) error {
			if c.Server != "" {
				c.Kubeconfig = ""
			}
			c.Complete()
			ctx, cancel := signalContext()
			defer cancel()
			rc, ca, err := agent.RESTConfig(ctx, c)
			if err != nil {
				return err
			}
			return runAgent(ctx, c, rc, ca)
		},
	}
	bindAgentFlags(cmd.Flags(), &c)
	return cmd
}

func runAgent(ctx context.Context, c config.Agent, rc *rest.Config, ca []byte) error {
	a, err := agent.New(c, rc, agent.Deps{ClusterCA: ca})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// agentForUp is the agent of `portal up`: this host is the only node.
func agentForUp(s config.Server, c config.Agent) config.Agent {
	c.RootDir = s.DataDir + "/agent"
	c.ClusterDomain = s.ClusterDomain
	c.ServiceCIDR = s.ServiceCIDR
	c.ClusterCIDR = s.Controllers.ClusterCIDR
	if ip := s.ClusterDNSIP(); ip != nil {
		c.ClusterDNS = []string{ip.String()}
	}
	if c.NodeIP == "" && s.AdvertiseAddress != "" {
		c.NodeIP = s.AdvertiseAddress
	}
	c.Complete()
	return c
}

// runUntil runs fn until ctx ends, logging a failure and retrying after a
// pause (the agent of `portal up` must not take the server down).
func runUntil(ctx context.Context, name string, fn func(context.Context) error) {
	for ctx.Err() == nil {
		err := fn(ctx)
		if ctx.Err() != nil {
			return
		}
		klog.ErrorS(err, "Stopped; restarting in 5s", "component", name)
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
}
