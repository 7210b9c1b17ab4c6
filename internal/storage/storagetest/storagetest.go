// Package storagetest starts throwaway embedded etcd backends on free
// loopback ports for tests of packages that need real etcd semantics.
package storagetest

import (
	"github.com/portal-net/portal/internal/netutil"

	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"go.uber.org/zap"

	"github.com/portal-net/portal/internal/storage"
)

// attempts covers the window between picking a free port and etcd binding
// it, in which another process may take it.
const attempts = 5

// FreeURLs returns n distinct http://127.0.0.1:<port> URLs whose ports were
// free a moment ago.
func FreeURLs(n int) ([]string, error) {
	ports, err := netutil.FreeLoopbackPorts(n)
	if err != nil {
		return nil, fmt.Errorf("storagetest: pick free port: %w", err)
	}
	urls := make([]string, len(ports))
	for i, p := range ports {
		urls[i] = fmt.Sprintf("http://127.0.0.1:%d", p)
	}
	return urls, nil
}

// Config returns an embedded-etcd Config with data under dataDir, free
// loopback ports and quiet logs.
func Config(t testing.TB, dataDir string) storage.Config {
	t.Helper()
	urls, err := FreeURLs(2)
	if err != nil {
		t.Fatal(err)
	}
	return storage.Config{
		DataDir:   dataDir,
		ClientURL: urls[0],
		PeerURL:   urls[1],
		Logger:    zap.NewNop(),
	}
}

// Start runs an embedded backend with data in a fresh temporary directory
// and closes it when the test ends.
func Start(t testing.TB) *storage.Backend {
	t.Helper()
	return StartIn(t, t.TempDir())
}

// StartIn is Start with data in dataDir, e.g. to restart on earlier data.
func StartIn(t testing.TB, dataDir string) *storage.Backend {
	t.Helper()
	var lastErr error
	for range attempts {
		b, err := storage.Start(context.Background(), Config(t, dataDir))
		if err == nil {
			t.Cleanup(func() {
				if err := b.Close(); err != nil {
					t.Errorf("storagetest: close: %v", err)
				}
			})
			return b
		}
		lastErr = err
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	t.Fatalf("storagetest: start embedded etcd: %v", lastErr)
	return nil
}
