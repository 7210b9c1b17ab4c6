package apitest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/portal-net/portal/internal/apiserver"
	"github.com/portal-net/portal/internal/config"
	"github.com/portal-net/portal/internal/netutil"
)

// Server is a running test API server.
type Server struct {
	*apiserver.Server
	// Config is an admin client config (QPS limits lifted).
	Config *rest.Config
	Client kubernetes.Interface
	// Kubeconfig is the path of an admin kubeconfig for this server.
	Kubeconfig string
	// ServerConfig is what the server was started with.
	ServerConfig config.Server
}

// Config returns a server config on free loopback ports with a temporary
// data dir; advertising loopback keeps the kubernetes endpoints unpublished.
func Config(t testing.TB) config.Server {
	t.Helper()
	ports, err := netutil.FreeLoopbackPorts(3)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.DefaultServer()
	cfg.DataDir = t.TempDir()
	cfg.BindAddress = "127.0.0.1"
	cfg.AdvertiseAddress = "127.0.0.1"
	cfg.SecurePort, cfg.EtcdClientPort, cfg.EtcdPeerPort = ports[0], ports[1], ports[2]
	return cfg
}

// Start runs an API server for the duration of the test. It is skipped in
// -short mode.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Config(t))
}

// StartWith runs an API server with cfg for the duration of the test.
func StartWith(t testing.TB, cfg config.Server) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("starts an API server")
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := apiserver.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("API server did not stop")
		}
	})
	select {
	case err := <-done:
		t.Fatalf("API server stopped: %v", err)
	case <-srv.Ready():
	case <-time.After(60 * time.Second):
		t.Fatal("API server not ready")
	}
	kc := filepath.Join(cfg.DataDir, "kubeconfig")
	if err := srv.AdminKubeconfig(kc); err != nil {
		t.Fatal(err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	rc.QPS, rc.Burst = 1000, 1000
	return &Server{Server: srv, Config: rc, Client: kubernetes.NewForConfigOrDie(rc), Kubeconfig: kc, ServerConfig: cfg}
}
