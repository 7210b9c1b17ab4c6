package agent

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/portal-net/portal/internal/agent/server"
)

// serveAPI runs the agent's HTTPS API (logs, exec) for the API server on
// --agent-port until ctx ends. Clients must present a certificate of the
// cluster CA.
func (a *Agent) serveAPI(ctx context.Context) error {
	if a.cfg.Port == 0 {
		return nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(a.clusterCA) {
		return errors.New("agent API: no cluster CA to verify the API server's client certificate (kubeconfig without certificate-authority data?)")
	}
	cert, err := server.SelfSignedCert(a.cfg.NodeName, []net.IP{a.nodeIP})
	if err != nil {
		return err
	}
	srv := server.New(server.Config{
		Runtime:  a.rt,
		Lookup:   a.lookup,
		ClientCA: pool,
		TLSCert:  cert,
	})
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(a.cfg.Port)))
	if err != nil {
		return fmt.Errorf("agent API: %w", err)
	}
	klog.InfoS("Agent API serving", "address", ln.Addr().String())
	go func() {
		if err := srv.Serve(ctx, ln); err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "Agent API stopped")
		}
	}()
	return nil
}

// lookup finds the UID of a pod on this node by namespace and name.
func (a *Agent) lookup(namespace, name string) (types.UID, bool) {
	p, err := a.pods.Pods(namespace).Get(name)
	if err != nil {
		return "", false
	}
	return p.UID, true
}
