package etcdtest

import (
	"github.com/portal-net/portal/internal/netutil"

	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// startTimeout bounds how long a test waits for the member to become ready;
// a single member with no fsync is ready in well under a second.
const startTimeout = 30 * time.Second

// Start runs an embedded etcd on 127.0.0.1 with a data directory under
// t.TempDir() and returns a client for it plus its client endpoints. Both
// the client and the server are shut down in t.Cleanup.
func Start(t testing.TB) (*clientv3.Client, []string) {
	t.Helper()
	var lastErr error
	// Free ports are picked by binding and releasing them, so another
	// process can take one in between: retry a few times before giving up.
	for attempt := 0; attempt < 5; attempt++ {
		cli, eps, err := start(t)
		if err == nil {
			return cli, eps
		}
		lastErr = err
	}
	t.Fatalf("etcdtest: starting embedded etcd: %v", lastErr)
	return nil, nil
}

func start(t testing.TB) (*clientv3.Client, []string, error) {
	ports, err := netutil.FreeLoopbackPorts(2)
	if err != nil {
		return nil, nil, err
	}
	clientURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[0])}
	peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[1])}

	cfg := embed.NewConfig()
	cfg.Name = "etcdtest"
	cfg.Dir = t.TempDir()
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ListenMetricsUrls = nil
	// etcd logs expected shutdown errors ("use of closed network
	// connection") at error level; start-up failures are returned anyway.
	// Set ETCDTEST_LOG_LEVEL to see its logs when debugging.
	cfg.LogLevel = "panic"
	if lvl := os.Getenv("ETCDTEST_LOG_LEVEL"); lvl != "" {
		cfg.LogLevel = lvl
	}
	// Durability does not matter for a test member and fsync dominates
	// write latency on slow disks.
	cfg.UnsafeNoFsync = true

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, nil, err
	case <-time.After(startTimeout):
		e.Server.Stop()
		e.Close()
		return nil, nil, fmt.Errorf("member not ready after %s", startTimeout)
	}

	endpoints := []string{clientURL.String()}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		e.Close()
		return nil, nil, err
	}
	t.Cleanup(func() {
		_ = cli.Close()
		e.Close()
	})
	return cli, endpoints, nil
}
