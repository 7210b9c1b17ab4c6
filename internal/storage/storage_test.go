package storage_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portal-net/portal/internal/storage"
	"github.com/portal-net/portal/internal/storage/storagetest"
)

func put(t *testing.T, b *storage.Backend, key, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.Client().Put(ctx, key, value); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func get(t *testing.T, b *storage.Backend, key string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := b.Client().Get(ctx, key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if len(resp.Kvs) == 0 {
		return "", false
	}
	return string(resp.Kvs[0].Value), true
}

func TestEmbeddedKeepsDataAcrossRestart(t *testing.T) {
	dataDir := t.TempDir()
	cfg := storagetest.Config(t, dataDir)
	b, err := storage.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Embedded() {
		t.Error("Embedded() = false for an embedded backend")
	}
	if got := b.Endpoints(); !slices.Equal(got, []string{cfg.ClientURL}) {
		t.Errorf("Endpoints = %v, want [%s]", got, cfg.ClientURL)
	}
	tr := b.Transport()
	if !slices.Equal(tr.ServerList, []string{cfg.ClientURL}) || tr.CertFile != "" || tr.KeyFile != "" || tr.TrustedCAFile != "" {
		t.Errorf("Transport = %+v", tr)
	}
	if sc := b.StorageConfig(); sc.Prefix != "/registry" || sc.Type != "etcd3" {
		t.Errorf("StorageConfig prefix %q type %q", sc.Prefix, sc.Type)
	}
	if err := b.Healthy(context.Background()); err != nil {
		t.Errorf("Healthy: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dataDir, "etcd")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("etcd data dir: %v %v", fi, err)
	}
	put(t, b, "/registry/things/a", "one")

	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-b.Stopped():
	default:
		t.Error("Stopped() not closed after Close")
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// The listeners are gone: the same ports can be bound again.
	for _, u := range []string{cfg.ClientURL, cfg.PeerURL} {
		l, err := net.Listen("tcp", strings.TrimPrefix(u, "http://"))
		if err != nil {
			t.Errorf("port of %s still bound after Close: %v", u, err)
			continue
		}
		_ = l.Close()
	}

	// Same ports, as a real restart would use.
	again, err := storage.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	if v, ok := get(t, again, "/registry/things/a"); !ok || v != "one" {
		t.Errorf("after restart got %q, %v; want one", v, ok)
	}
	put(t, again, "/registry/things/b", "two")
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}

	// Other ports: the member's stored peer URL no longer matches, which a
	// single member tolerates.
	moved := storagetest.StartIn(t, dataDir)
	for key, want := range map[string]string{"/registry/things/a": "one", "/registry/things/b": "two"} {
		if v, ok := get(t, moved, key); !ok || v != want {
			t.Errorf("on new ports %s = %q, %v; want %q", key, v, ok, want)
		}
	}
}

func TestExternalServersUseGivenEtcd(t *testing.T) {
	server := storagetest.Start(t)
	put(t, server, "/registry/x", "from-server")

	dataDir := t.TempDir()
	b, err := storage.Start(context.Background(), storage.Config{
		DataDir:     dataDir,
		EtcdServers: server.Endpoints(),
		Prefix:      "/portal",
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	if b.Embedded() {
		t.Error("Embedded() = true with external servers")
	}
	if b.Stopped() != nil || b.Err() != nil {
		t.Error("external backend exposes embedded-member channels")
	}
	if _, err := os.Stat(filepath.Join(dataDir, "etcd")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("external config created an etcd data dir (stat: %v)", err)
	}
	if !slices.Equal(b.Endpoints(), server.Endpoints()) || !slices.Equal(b.Transport().ServerList, server.Endpoints()) {
		t.Errorf("endpoints %v, transport %v; want %v", b.Endpoints(), b.Transport().ServerList, server.Endpoints())
	}
	if b.Prefix() != "/portal" {
		t.Errorf("Prefix = %q", b.Prefix())
	}
	if v, ok := get(t, b, "/registry/x"); !ok || v != "from-server" {
		t.Errorf("read through external backend = %q, %v", v, ok)
	}
	put(t, b, "/registry/y", "from-client")
	if v, ok := get(t, server, "/registry/y"); !ok || v != "from-client" {
		t.Errorf("write did not reach the server: %q, %v", v, ok)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// Closing the external backend leaves the server running.
	if err := server.Healthy(context.Background()); err != nil {
		t.Errorf("server unhealthy after external backend closed: %v", err)
	}
}

func TestPortInUseIsReported(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := "http://" + l.Addr().String()
	port := l.Addr().(*net.TCPAddr).Port

	for _, which := range []string{"client", "peer"} {
		t.Run(which, func(t *testing.T) {
			dataDir := t.TempDir()
			cfg := storagetest.Config(t, dataDir)
			if which == "client" {
				cfg.ClientURL = busy
			} else {
				cfg.PeerURL = busy
			}
			b, err := storage.Start(context.Background(), cfg)
			if err == nil {
				b.Close()
				t.Fatal("started on a port in use")
			}
			want := fmt.Sprintf("storage: embedded etcd: %s URL %s: port %d is already in use (another portal server or etcd running?); stop it or choose another port", which, busy, port)
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error = %q\nwant prefix %q", err, want)
			}
			if !errors.Is(err, syscall.EADDRINUSE) {
				t.Errorf("error does not wrap EADDRINUSE: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dataDir, "etcd")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("failed start left an etcd data dir (stat: %v)", err)
			}
		})
	}
}

func TestUnreachableExternalServersFail(t *testing.T) {
	urls, err := storagetest.FreeURLs(1)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = storage.Start(context.Background(), storage.Config{
		EtcdServers:  urls,
		StartTimeout: 1500 * time.Millisecond,
		Logger:       zap.NewNop(),
	})
	if err == nil {
		t.Fatal("connected to a server that does not exist")
	}
	want := "storage: etcd servers " + urls[0] + ": not healthy after 1.5s: "
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error = %q, want prefix %q", err, want)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("gave up after %v, want about the start timeout", d)
	}
}

func TestInvalidConfigIsRejected(t *testing.T) {
	_, err := storage.Start(context.Background(), storage.Config{DataDir: t.TempDir(), ClientURL: "http://10.0.0.5:2379"})
	want := `storage: invalid config: clientURL: Invalid value: "http://10.0.0.5:2379": host must be a loopback IP address such as 127.0.0.1`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}

func TestMissingTLSFilesFail(t *testing.T) {
	_, err := storage.Start(context.Background(), storage.Config{
		EtcdServers: []string{"https://127.0.0.1:2379"},
		CAFile:      filepath.Join(t.TempDir(), "nope.crt"),
		Logger:      zap.NewNop(),
	})
	if err == nil || !strings.HasPrefix(err.Error(), "storage: TLS for etcd servers: ") {
		t.Errorf("error = %v, want a TLS setup error", err)
	}
}
