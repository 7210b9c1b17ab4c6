package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/portal-net/portal/internal/apiserver"
	"github.com/portal-net/portal/internal/config"
	"github.com/portal-net/portal/internal/controllermanager"
)

func bindServerFlags(fs *pflag.FlagSet, c *config.Server) {
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "Directory for etcd data, certificates and the admin kubeconfig")
	fs.StringVar(&c.BindAddress, "bind-address", c.BindAddress, "Address the API server listens on")
	fs.IntVar(&c.SecurePort, "secure-port", c.SecurePort, "HTTPS port of the API server")
	fs.StringVar(&c.AdvertiseAddress, "advertise-address", c.AdvertiseAddress, "Address published as the kubernetes service endpoint (default: the host's first non-loopback IPv4 address)")
	fs.StringSliceVar(&c.ExtraSANs, "tls-san", c.ExtraSANs, "Extra DNS names or IPs for the serving certificate")
	fs.StringSliceVar(&c.EtcdServers, "etcd-servers", c.EtcdServers, "External etcd endpoints; when empty an embedded etcd runs under --data-dir")
	fs.StringVar(&c.EtcdCAFile, "etcd-cafile", c.EtcdCAFile, "CA of the external etcd")
	fs.StringVar(&c.EtcdCertFile, "etcd-certfile", c.EtcdCertFile, "Client certificate for the external etcd")
	fs.StringVar(&c.EtcdKeyFile, "etcd-keyfile", c.EtcdKeyFile, "Client key for the external etcd")
	fs.StringVar(&c.EtcdPrefix, "etcd-prefix", c.EtcdPrefix, "Key prefix of all objects in etcd")
	fs.IntVar(&c.EtcdClientPort, "etcd-client-port", c.EtcdClientPort, "Loopback client port of the embedded etcd")
	fs.IntVar(&c.EtcdPeerPort, "etcd-peer-port", c.EtcdPeerPort, "Loopback peer port of the embedded etcd")
	fs.StringVar(&c.ServiceCIDR, "service-cidr", c.ServiceCIDR, "Range of Service ClusterIPs (alias: --service-cluster-ip-range)")
	fs.StringVar(&c.ServiceCIDR, "service-cluster-ip-range", c.ServiceCIDR, "Same as --service-cidr")
	fs.StringVar(&c.NodePortRange, "service-node-port-range", c.NodePortRange, "Range of NodePorts")
	bindControllerFlags(fs, &c.Controllers)
	fs.StringVar(&c.ClusterDomain, "cluster-domain", c.ClusterDomain, "DNS domain of the cluster")
	fs.StringVar(&c.KubeconfigPath, "write-kubeconfig", c.KubeconfigPath, "Where to write the admin kubeconfig (default <data-dir>/kubeconfig)")
	fs.DurationVar(&c.RepairInterval, "allocation-repair-interval", c.RepairInterval, "How often IP and port allocations are reconciled with the stored services")
	fs.DurationVar(&c.RepairMinAge, "allocation-repair-min-age", c.RepairMinAge, "Minimum age of an unclaimed allocation before repair releases it")
	_ = fs.MarkHidden("service-cluster-ip-range")
}

func bindControllerFlags(fs *pflag.FlagSet, c *config.Controllers) {
	fs.StringVar(&c.ClusterCIDR, "cluster-cidr", c.ClusterCIDR, "Range of pod IPs, split into one pod CIDR per node")
	fs.IntVar(&c.NodeCIDRMaskSize, "node-cidr-mask-size", c.NodeCIDRMaskSize, "Prefix length of each node's pod CIDR")
	fs.StringSliceVar(&c.LBPool, "lb-pool", c.LBPool, "Addresses LoadBalancer services get (status.loadBalancer.ingress): CIDRs or first-last ranges, comma-separated; empty: they stay pending")
	fs.BoolVar(&c.Disabled, "disable-controllers", c.Disabled, "Run the API only: no controller manager and no scheduler")
	fs.BoolVar(&c.LeaderElect, "leader-elect", c.LeaderElect, "Elect one active controller manager among servers sharing etcd (Lease kube-system/<--leader-elect-lease-name>)")
	fs.StringVar(&c.LeaseName, "leader-elect-lease-name", c.LeaseName, "Name of the leader-election Lease in kube-system")
	fs.DurationVar(&c.LeaseDuration, "leader-elect-lease-duration", c.LeaseDuration, "How long a leader's Lease is honoured without renewal")
	fs.DurationVar(&c.RenewDeadline, "leader-elect-renew-deadline", c.RenewDeadline, "How long the leader retries renewing before it gives up leadership")
	fs.DurationVar(&c.RetryPeriod, "leader-elect-retry-period", c.RetryPeriod, "How often candidates try to acquire or renew the Lease")
	fs.StringVar(&c.MetricsBindAddress, "controller-metrics-bind-address", c.MetricsBindAddress, "host:port serving the controllers' Prometheus metrics, /healthz and /debug/pprof over HTTP (empty: off)")
	fs.IntVar(&c.Workers, "concurrent-syncs", c.Workers, "Workers per controller")
	fs.IntVar(&c.MaxEndpointsPerSlice, "max-endpoints-per-slice", c.MaxEndpointsPerSlice, "Maximum endpoints in one EndpointSlice")
	fs.DurationVar(&c.EndpointUpdatesBatchPeriod, "endpoint-updates-batch-period", c.EndpointUpdatesBatchPeriod, "Delay that coalesces pod-driven endpoint updates (0: none)")
	fs.DurationVar(&c.NodeMonitorGracePeriod, "node-monitor-grace-period", c.NodeMonitorGracePeriod, "A node not heard from for this long is marked NotReady")
	fs.DurationVar(&c.NodeMonitorPeriod, "node-monitor-period", c.NodeMonitorPeriod, "How often node health is checked")
	fs.DurationVar(&c.NodeStartupGracePeriod, "node-startup-grace-period", c.NodeStartupGracePeriod, "Grace for a newly registered node before it is marked NotReady")
}

func newServerCommand() *cobra.Command {
	c := config.DefaultServer()
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the API server (with embedded etcd unless --etcd-servers is given)",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			return runServer(ctx, c, nil)
		},
	}
	bindServerFlags(cmd.Flags(), &c)
	return cmd
}

// runServer starts the API server, writes the admin kubeconfig once it is
// ready, starts the controller manager, calls onReady and serves until ctx
// ends. On shutdown the controllers stop first (releasing their Lease so
// another server takes over at once), then the API server.
func runServer(ctx context.Context, c config.Server, onReady func(context.Context, *apiserver.Server)) error {
	apiCtx, stopAPI := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAPI()
	srv, err := apiserver.New(apiCtx, c)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Run(apiCtx) }()
	select {
	case err := <-errc:
		return err
	case <-srv.Ready():
	case <-ctx.Done():
		stopAPI()
		return <-errc
	}
	if err := srv.AdminKubeconfig(c.Kubeconfig()); err != nil {
		stopAPI()
		<-errc
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	klog.InfoS("API server ready", "url", srv.URL(), "kubeconfig", c.Kubeconfig())

	cmDone := make(chan struct{})
	if c.Controllers.Disabled {
		close(cmDone)
	} else {
		c.Controllers.RootCAPEM = srv.CACertPEM()
		cm, err := controllermanager.New(srv.LoopbackConfig(), c.Controllers)
		if err != nil {
			stopAPI()
			<-errc
			return err
		}
		go func() {
			defer close(cmDone)
			if err := cm.Run(ctx); err != nil {
				klog.ErrorS(err, "Controller manager stopped")
			}
		}()
	}
	joinPath := filepath.Join(c.DataDir, "join-token")
	if _, err := srv.WriteJoinToken(joinPath); err != nil {
		klog.ErrorS(err, "Writing the join token")
	} else {
		klog.InfoS("Agents join with: portal agent --server URL --token $(cat "+joinPath+")", "tokenFile", joinPath)
	}
	if onReady != nil {
		onReady(ctx, srv)
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	select {
	case <-cmDone:
	case <-time.After(10 * time.Second):
		klog.InfoS("Controllers did not stop within 10s; stopping the API server anyway")
	}
	stopAPI()
	return <-errc
}

func newUpCommand() *cobra.Command {
	c := config.DefaultServer()
	ac := config.DefaultAgent()
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run an all-in-one cluster on this machine (API server, controllers, this host as the node)",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			// The agent stops with the server; its pods keep running.
			var agentWG sync.WaitGroup
			defer agentWG.Wait()
			return runServer(ctx, c, func(ctx context.Context, srv *apiserver.Server) {
				node := agentForUp(c, ac)
				agentWG.Add(1)
				go func() {
					defer agentWG.Done()
					runUntil(ctx, "agent", func(ctx context.Context) error {
						return runAgent(ctx, node, srv.LoopbackConfig(), srv.CACertPEM())
					})
				}()
				fmt.Fprintf(os.Stdout, `
portal is up: API %s
  admin kubeconfig: %s
  try:  portal kubectl get svc
        KUBECONFIG=%s kubectl get nodes
Stop with Ctrl-C.
`, srv.URL(), c.Kubeconfig(), c.Kubeconfig())
			})
		},
	}
	bindServerFlags(cmd.Flags(), &c)
	bindNodeFlags(cmd.Flags(), &ac)
	return cmd
}
