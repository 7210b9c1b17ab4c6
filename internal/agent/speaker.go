package agent

import (
	"context"
	"fmt"
	"net/netip"

	"k8s.io/client-go/informers"
	"k8s.io/klog/v2"

	"github.com/portal-net/portal/internal/feed"
	"github.com/portal-net/portal/internal/lb/members"
	"github.com/portal-net/portal/internal/lb/speaker"
)

// startSpeaker announces the LoadBalancer addresses this node is elected
// for (issue 9) on the shared informer factory and slices feed (the
// caller starts both). Without the heartbeat socket there is no safe
// election, so a failure to open it leaves this node silent (and says
// so) rather than announcing beside others.
func (a *Agent) startSpeaker(ctx context.Context, f informers.SharedInformerFactory, slices feed.Source) error {
	if !a.cfg.LBAnnounce || a.cfg.ProxyMode == "none" {
		return nil
	}
	nodeIP, err := netip.ParseAddr(a.cfg.NodeIP)
	if err != nil {
		return fmt.Errorf("--node-ip: %w", err)
	}
	m, err := members.New(members.Config{Self: a.cfg.NodeName, Bind: nodeIP, Port: a.cfg.LBHeartbeatPort})
	if err != nil {
		klog.ErrorS(err, "Load-balancer addresses are not announced from this node: no heartbeat socket", "port", a.cfg.LBHeartbeatPort)
		return nil
	}
	sp, err := speaker.New(speaker.Config{
		NodeName:  a.cfg.NodeName,
		NodeIP:    nodeIP,
		Interface: a.cfg.LBInterface,
		Members:   m,
		Recorder:  a.lbRec,
	}, f, slices)
	if err != nil {
		return err
	}
	go sp.Run(ctx)
	return nil
}
