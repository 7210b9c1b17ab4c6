package config

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/portal-net/portal/internal/lb/ipam"
)

// Controllers configures the controller manager and scheduler that run
// inside `portal server` (and `portal up`).
type Controllers struct {
	// Disabled turns all controllers and the scheduler off (an API-only server).
	Disabled bool
	// LeaderElect makes servers sharing one etcd elect a single active
	// controller manager through a Lease in kube-system.
	LeaderElect bool
	// LeaseName is that Lease's name.
	LeaseName     string
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration

	// MetricsBindAddress, when set, serves Prometheus metrics (workqueue
	// depth, adds, latency per controller) and /healthz over plain HTTP.
	MetricsBindAddress string

	// Workers per controller loop.
	Workers int

	// MaxEndpointsPerSlice bounds EndpointSlice size (Kubernetes: 100).
	MaxEndpointsPerSlice int
	// EndpointUpdatesBatchPeriod coalesces pod-driven endpoint updates.
	EndpointUpdatesBatchPeriod time.Duration

	// ClusterCIDR is divided into per-node pod CIDRs of NodeCIDRMaskSize.
	ClusterCIDR      string
	NodeCIDRMaskSize int

	// RootCAPEM is the cluster CA certificate the root CA publisher puts
	// in every namespace (ConfigMap kube-root-ca.crt); set by the server,
	// or taken from the kubeconfig of `portal controller-manager`.
	RootCAPEM []byte

	// LBPool are the address ranges of the default LoadBalancer pool
	// (CIDRs or first-last ranges); empty: LoadBalancer services stay
	// pending, as in a cluster without a cloud.
	LBPool []string

	// NodeMonitorGracePeriod: a node whose Lease/heartbeat is older is
	// marked NotReady (Unknown).
	NodeMonitorGracePeriod time.Duration
	NodeMonitorPeriod      time.Duration
	NodeStartupGracePeriod time.Duration
}

// DefaultControllers returns Kubernetes' defaults where they exist. The
// leader-election timings are shorter than kube-controller-manager's
// (15 s/10 s/2 s) so that a killed leader is replaced well within 15 s:
// at most lease + retry period (~9 s) after its last renewal.
func DefaultControllers() Controllers {
	return Controllers{
		LeaderElect:            true,
		LeaseName:              "portal-controller-manager",
		LeaseDuration:          8 * time.Second,
		RenewDeadline:          6 * time.Second,
		RetryPeriod:            time.Second,
		Workers:                5,
		MaxEndpointsPerSlice:   100,
		ClusterCIDR:            "10.42.0.0/16",
		NodeCIDRMaskSize:       24,
		NodeMonitorGracePeriod: 50 * time.Second,
		NodeMonitorPeriod:      5 * time.Second,
		NodeStartupGracePeriod: time.Minute,
	}
}

// Validate checks flag values.
func (c *Controllers) Validate() error {
	var errs []error
	if c.MaxEndpointsPerSlice < 1 || c.MaxEndpointsPerSlice > 1000 {
		errs = append(errs, fmt.Errorf("--max-endpoints-per-slice %d must be within 1..1000", c.MaxEndpointsPerSlice))
	}
	if c.LeaderElect && !(c.LeaseDuration > c.RenewDeadline && c.RenewDeadline > c.RetryPeriod && c.RetryPeriod > 0) {
		errs = append(errs, errors.New("leader election needs --leader-elect-lease-duration > --leader-elect-renew-deadline > --leader-elect-retry-period > 0"))
	}
	_, n, err := net.ParseCIDR(c.ClusterCIDR)
	if err != nil {
		errs = append(errs, fmt.Errorf("--cluster-cidr: %w", err))
	} else if ones, bits := n.Mask.Size(); c.NodeCIDRMaskSize < ones || c.NodeCIDRMaskSize > bits {
		errs = append(errs, fmt.Errorf("--node-cidr-mask-size %d does not fit --cluster-cidr %s", c.NodeCIDRMaskSize, c.ClusterCIDR))
	}
	if _, err := ipam.ParseRanges(c.LBPool...); err != nil {
		errs = append(errs, fmt.Errorf("--lb-pool: %w", err))
	}
	if c.NodeMonitorGracePeriod <= c.NodeMonitorPeriod {
		errs = append(errs, errors.New("--node-monitor-grace-period must exceed --node-monitor-period"))
	}
	return errors.Join(errs...)
}
