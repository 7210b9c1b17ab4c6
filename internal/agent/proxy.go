package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"slices"

	"k8s.io/client-go/informers"
	"k8s.io/klog/v2"
	"sigs.k8s.io/knftables"

	"github.com/portal-net/portal/internal/feed"
	"github.com/portal-net/portal/internal/proxy/dataplane"
	"github.com/portal-net/portal/internal/proxy/healthcheck"
	"github.com/portal-net/portal/internal/proxy/iptables"
	"github.com/portal-net/portal/internal/proxy/nftables"
	"github.com/portal-net/portal/internal/proxy/runner"
	"github.com/portal-net/portal/internal/proxy/topologykeys"
	"github.com/portal-net/portal/internal/proxy/userspace"
	"github.com/portal-net/portal/internal/sys/conntrack"
	"github.com/portal-net/portal/internal/sys/sysctl"
	"github.com/prometheus/client_golang/prometheus"
)

// startProxy runs the service proxy of this node (issue 6) on the shared
// informer factory (the caller starts it). Its rules live in the node's
// network namespace and stay when the agent stops, so services keep
// working; the next agent replaces them in one transaction.
func (a *Agent) startProxy(ctx context.Context, f informers.SharedInformerFactory, keys *topologykeys.Keys, endpointSlices feed.Source) error {
	if a.cfg.ProxyMode == "none" {
		cleanupOtherModes(ctx, a.cfg.ProxyMode)
		return nil
	}
	svcCIDR, err := netip.ParsePrefix(a.cfg.ServiceCIDR)
	if err != nil {
		return fmt.Errorf("--service-cidr: %w", err)
	}
	clusterCIDR, err := netip.ParsePrefix(a.cfg.ClusterCIDR)
	if err != nil {
		return fmt.Errorf("--cluster-cidr: %w", err)
	}
	nodeIP, err := netip.ParseAddr(a.cfg.NodeIP)
	if err != nil {
		return fmt.Errorf("--node-ip: %w", err)
	}
	// Replies between pods on the bridge must pass the NAT hooks, or a
	// pod reaching another pod of the same node through a ClusterIP gets
	// the answer from the pod's own address. Stable TCP timestamps: see
	// sysctl.TCPTimestamps.
	sc := sysctl.New()
	want := map[string]string{sysctl.BridgeNFCallIPTables: "1", sysctl.IPForward: "1"}
	if a.cfg.StableTCPTimestamps {
		want[sysctl.TCPTimestamps] = "2"
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if _, err := sysctl.Ensure(sc, name, want[name]); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				klog.InfoS("Kernel setting not available; the service proxy works without it, less well", "sysctl", name)
				continue
			}
			return err
		}
	}
	// A node of this agent routes the service CIDR to its pod bridge; a
	// proxy-only node has no bridge and relies on its own routes, as
	// kube-proxy does.
	if !a.cfg.ProxyOnly {
		if err := serviceRoute(svcCIDR.Masked()); err != nil {
			return fmt.Errorf("route to the service CIDR: %w", err)
		}
	}
	var datapath dataplane.Interface
	switch a.cfg.ProxyMode {
	case "iptables":
		datapath = iptables.New(iptables.Options{})
	case "userspace":
		nft, err := knftables.New(knftables.IPv4Family, userspace.TableName, knftables.UseNetlink)
		if err != nil {
			return fmt.Errorf("nftables: %w", err)
		}
		us, err := userspace.New(ctx, nft, userspace.Options{Scheduler: a.cfg.Scheduler})
		if err != nil {
			return err
		}
		datapath = us
	default:
		nft, err := knftables.New(knftables.IPv4Family, nftables.TableName, knftables.UseNetlink)
		if err != nil {
			return fmt.Errorf("nftables: %w", err)
		}
		datapath = nftables.New(nft)
	}
	metrics := healthcheck.NewMetrics()
	if c, ok := datapath.(prometheus.Collector); ok {
		// The userspace mode's per-backend counters.
		if err := metrics.Registry().Register(c); err != nil {
			return fmt.Errorf("proxy metrics: %w", err)
		}
	}
	health := healthcheck.NewProxyHealth(healthcheck.ProxyHealthConfig{SyncPeriod: a.cfg.ProxySyncPeriod, Metrics: metrics})
	serviceHealth := healthcheck.NewServiceHealthServer(healthcheck.ServiceHealthConfig{NodeIPs: []netip.Addr{nodeIP}, Proxy: health})
	go func() {
		<-ctx.Done()
		serviceHealth.Close()
	}()
	for _, srv := range []struct {
		addr string
		run  func(context.Context, string) error
	}{{a.cfg.HealthzBindAddress, health.Run}, {a.cfg.MetricsBindAddress, metrics.Run}} {
		if srv.addr == "" {
			continue
		}
		go func() {
			if err := srv.run(ctx, srv.addr); err != nil && ctx.Err() == nil {
				klog.ErrorS(err, "Service proxy endpoint stopped", "address", srv.addr)
			}
		}()
	}
	r, err := runner.New(runner.Config{
		NodeName:       a.cfg.NodeName,
		EndpointSlices: endpointSlices,
		NodeIPs:        []netip.Addr{nodeIP},
		ServiceCIDRs:   []netip.Prefix{svcCIDR.Masked()},
		ClusterCIDR:    clusterCIDR.Masked(),
		TopologyKeys:   keys.For,
		SyncPeriod:     a.cfg.ProxySyncPeriod,
		MinSyncPeriod:  a.cfg.ProxyMinSyncPeriod,
		Datapath:       datapath,
		Conntrack:      conntrack.New(),
		Health:         health,
		ServiceHealth:  serviceHealth,
		Metrics:        metrics,
	}, f)
	if err != nil {
		return err
	}
	go func() {
		// Rules of the modes not in use (an earlier run in another mode)
		// go before the first sync, so two datapaths never answer for
		// the same service; while the informers list (tens of ms of
		// iptables and nft commands off the start-up's path).
		cleanupOtherModes(ctx, a.cfg.ProxyMode)
		klog.InfoS("Service proxy starting", "mode", a.cfg.ProxyMode, "serviceCIDR", svcCIDR, "clusterCIDR", clusterCIDR)
		// Run waits for the informers it reads (Services with their
		// topologyKeys, EndpointSlices, Nodes), not for the agent's others.
		r.Run(ctx)
	}()
	return nil
}

// cleanupOtherModes removes what the datapaths other than mode left on
// this node. Failures are logged: a host without iptables, say, has
// nothing of ours to clean.
func cleanupOtherModes(ctx context.Context, mode string) {
	if mode != "nftables" {
		nft, err := knftables.New(knftables.IPv4Family, nftables.TableName, knftables.UseNetlink)
		if err == nil {
			tx := nft.NewTransaction()
			tx.Delete(&knftables.Table{})
			err = nft.Run(ctx, tx)
		}
		if err != nil && !knftables.IsNotFound(err) {
			klog.V(2).InfoS("No nftables proxy rules removed", "table", nftables.TableName, "err", err)
		} else if err == nil {
			klog.InfoS("Removed the nftables proxy rules of an earlier run", "table", nftables.TableName)
		}
	}
	if mode != "iptables" {
		if err := iptables.New(iptables.Options{}).Cleanup(ctx); err != nil {
			klog.V(2).InfoS("No iptables proxy rules removed", "err", err)
		}
	}
	if mode != "userspace" {
		nft, err := knftables.New(knftables.IPv4Family, userspace.TableName, knftables.UseNetlink)
		if err == nil {
			err = userspace.Cleanup(ctx, nft)
		}
		if err != nil {
			klog.V(2).InfoS("No userspace proxy rules removed", "table", userspace.TableName, "err", err)
		}
	}
}
