package agent

import (
	"context"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"
	"sigs.k8s.io/knftables"

	"github.com/portal-net/portal/internal/hostport"
	"github.com/portal-net/portal/internal/podruntime/network"
)

// hostPortTable is where the node's host-port mappings are written.
type hostPortTable interface {
	Sync(ctx context.Context, ms []hostport.Mapping) error
}

// syncHostPorts keeps the node's host ports mapped to its pods: once at
// start (which also clears mappings of pods gone while the agent was
// down) and on every change of this node's pods. The table stays when
// the agent stops, so pods keep their host ports meanwhile.
func (a *Agent) syncHostPorts(ctx context.Context, changed chan struct{}) {
	if a.hostPorts == nil {
		nft, err := knftables.New(knftables.IPv4Family, hostport.TableName)
		if err != nil {
			klog.ErrorS(err, "Pods' host ports are not mapped: no nftables")
			return
		}
		a.hostPorts = hostport.New(nft, network.DefaultBridgeName)
	}
	var last []hostport.Mapping
	synced := false
	for {
		pods, err := a.pods.List(labels.Everything())
		if err == nil {
			ms := hostport.FromPods(pods)
			if !synced || !slices.Equal(ms, last) {
				if err := a.hostPorts.Sync(ctx, ms); err != nil {
					klog.ErrorS(err, "Mapping the pods' host ports; retrying")
					time.AfterFunc(5*time.Second, func() { kick(changed) })
				} else {
					last, synced = ms, true
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}
