package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/portal-net/portal/internal/apiserver"
	"github.com/portal-net/portal/internal/config"
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
	fs.StringVar(&c.ClusterCIDR, "cluster-cidr", c.ClusterCIDR, "Range of pod IPs, split into a /24 per node")
	fs.StringVar(&c.ClusterDomain, "cluster-domain", c.ClusterDomain, "DNS domain of the cluster")
	fs.StringVar(&c.KubeconfigPath, "write-kubeconfig", c.KubeconfigPath, "Where to write the admin kubeconfig (default <data-dir>/kubeconfig)")
	fs.DurationVar(&c.RepairInterval, "allocation-repair-interval", c.RepairInterval, "How often IP and port allocations are reconciled with the stored services")
	fs.DurationVar(&c.RepairMinAge, "allocation-repair-min-age", c.RepairMinAge, "Minimum age of an unclaimed allocation before repair releases it")
	_ = fs.MarkHidden("service-cluster-ip-range")
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
// ready, calls onReady and serves until ctx ends.
func runServer(ctx context.Context, c config.Server, onReady func(*apiserver.Server)) error {
	srv, err := apiserver.New(ctx, c)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Run(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-srv.Ready():
	}
	if err := srv.AdminKubeconfig(c.Kubeconfig()); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	klog.InfoS("API server ready", "url", srv.URL(), "kubeconfig", c.Kubeconfig())
	if onReady != nil {
		onReady(srv)
	}
	return <-errc
}

func newUpCommand() *cobra.Command {
	c := config.DefaultServer()
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run an all-in-one cluster on this machine (API server, controllers, this host as the node)",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			return runServer(ctx, c, func(srv *apiserver.Server) {
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
	return cmd
}
