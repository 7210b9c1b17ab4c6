package agent

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/portal-net/portal/internal/config"
	"github.com/portal-net/portal/internal/pki"
)

// CACertsPath is where a portal server publishes its CA certificate to
// anyone; joining agents check it against the hash in their join token.
const CACertsPath = "/cacerts"

// RESTConfig is the agent's client configuration: from --kubeconfig, or
// from --server and a join token (the token's CA hash authenticates the
// server, so no CA file and no insecure mode are needed). It also returns
// the cluster CA (PEM), which the agent's own HTTPS API trusts for client
// certificates.
func RESTConfig(ctx context.Context, c config.Agent) (*rest.Config, []byte, error) {
	if c.Server == "" {
		rc, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
		if err != nil {
			return nil, nil, fmt.Errorf("kubeconfig %s: %w", c.Kubeconfig, err)
		}
		ca := rc.TLSClientConfig.CAData
		if len(ca) == 0 && rc.TLSClientConfig.CAFile != "" {
			if ca, err = os.ReadFile(rc.TLSClientConfig.CAFile); err != nil {
				return nil, nil, fmt.Errorf("kubeconfig CA: %w", err)
			}
		}
		return rc, ca, nil
	}
	secret, hash, err := pki.ParseJoinToken(c.Token)
	if err != nil {
		return nil, nil, err
	}
	server := strings.TrimSuffix(c.Server, "/")
	ca, err := fetchCA(ctx, server)
	if err != nil {
		return nil, nil, err
	}
	if err := pki.VerifyCA(ca, hash); err != nil {
		return nil, nil, fmt.Errorf("server %s: %w", server, err)
	}
	return &rest.Config{Host: server, BearerToken: secret, TLSClientConfig: rest.TLSClientConfig{CAData: ca}}, ca, nil
}

// fetchCA reads the CA certificate a server publishes. The connection is
// not verified here; the caller verifies the certificate's hash.
func fetchCA(ctx context.Context, server string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, server+CACertsPath, nil)
	if err != nil {
		return nil, fmt.Errorf("--server %s: %w", server, err)
	}
	// The body is trusted only after its hash matched the join token.
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // verified by hash
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch the server's CA: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("fetch the server's CA: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch the server's CA: %s %s: %s", server+CACertsPath, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}
