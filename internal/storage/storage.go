package storage

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"k8s.io/apiserver/pkg/storage/storagebackend"
)

const (
	dialTimeout = 5 * time.Second
	// healthRetryInterval paces health probes while waiting for etcd.
	healthRetryInterval = 200 * time.Millisecond
)

// Backend is a running storage backend.
type Backend struct {
	cfg       Config
	endpoints []string
	client    *clientv3.Client
	etcd      *embed.Etcd // nil for external servers
	logLevel  zap.AtomicLevel

	closeOnce sync.Once
	closeErr  error
}

// Start connects to the external servers of cfg, or starts the embedded
// member and waits until it serves. ctx bounds only the start.
func Start(ctx context.Context, cfg Config) (*Backend, error) {
	cfg = WithDefaults(cfg)
	if errs := Validate(cfg); len(errs) > 0 {
		return nil, fmt.Errorf("storage: invalid config: %w", errs.ToAggregate())
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	if cfg.Embedded() {
		return startEmbedded(ctx, cfg)
	}
	return connectExternal(ctx, cfg)
}

func startEmbedded(ctx context.Context, cfg Config) (*Backend, error) {
	level := zap.NewAtomicLevelAt(zap.WarnLevel)
	ecfg, err := embedConfig(cfg, level)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	for _, l := range []struct{ what, u string }{{"client", cfg.ClientURL}, {"peer", cfg.PeerURL}} {
		if err := checkPortFree(l.what, l.u); err != nil {
			return nil, fmt.Errorf("storage: embedded etcd: %w", err)
		}
	}
	if err := os.MkdirAll(ecfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("storage: create %s: %w", ecfg.Dir, err)
	}
	e, err := embed.StartEtcd(ecfg)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("storage: embedded etcd on %s (peer %s): a port is already in use: %w", cfg.ClientURL, cfg.PeerURL, err)
		}
		return nil, fmt.Errorf("storage: start embedded etcd in %s: %w", ecfg.Dir, err)
	}
	if err := waitReady(ctx, e, cfg.StartTimeout); err != nil {
		e.Close()
		return nil, fmt.Errorf("storage: embedded etcd in %s: %w", ecfg.Dir, err)
	}
	endpoints := []string{cfg.ClientURL}
	client, err := newClient(cfg, endpoints, nil)
	if err != nil {
		e.Close()
		return nil, err
	}
	b := &Backend{cfg: cfg, endpoints: endpoints, client: client, etcd: e, logLevel: level}
	if err := b.waitHealthy(ctx); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("storage: embedded etcd in %s: %w", ecfg.Dir, err)
	}
	return b, nil
}

// waitReady waits for the member to join its (single-member) cluster and
// serve clients.
func waitReady(ctx context.Context, e *embed.Etcd, timeout time.Duration) error {
	select {
	case <-e.Server.ReadyNotify():
		return nil
	case <-e.Server.StopNotify():
		return errors.New("stopped before becoming ready (see etcd's log above)")
	case err := <-e.Err():
		return fmt.Errorf("failed while starting: %w", err)
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("not ready after %s", timeout)
		}
		return fmt.Errorf("start aborted: %w", ctx.Err())
	}
}

// checkPortFree turns "address already in use" into a message naming the
// setting to change, before etcd reports it in its own words.
func checkPortFree(what, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("%s URL %q: %w", what, rawURL, err)
	}
	l, err := net.Listen("tcp", u.Host)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("%s URL %s: port %s is already in use (another portal server or etcd running?); stop it or choose another port: %w", what, rawURL, u.Port(), err)
		}
		return fmt.Errorf("%s URL %s: cannot listen: %w", what, rawURL, err)
	}
	return l.Close()
}

func connectExternal(ctx context.Context, cfg Config) (*Backend, error) {
	var tlsCfg *tls.Config
	if cfg.CAFile != "" || cfg.CertFile != "" {
		info := transport.TLSInfo{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, TrustedCAFile: cfg.CAFile}
		var err error
		if tlsCfg, err = info.ClientConfig(); err != nil {
			return nil, fmt.Errorf("storage: TLS for etcd servers: %w", err)
		}
	}
	endpoints := slices.Clone(cfg.EtcdServers)
	client, err := newClient(cfg, endpoints, tlsCfg)
	if err != nil {
		return nil, err
	}
	b := &Backend{cfg: cfg, endpoints: endpoints, client: client}
	if err := b.waitHealthy(ctx); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("storage: etcd servers %s: %w", strings.Join(endpoints, ","), err)
	}
	return b, nil
}

func newClient(cfg Config, endpoints []string, tlsCfg *tls.Config) (*clientv3.Client, error) {
	lg := cfg.Logger
	if lg == nil {
		// The client logs every retry at warn; Healthy reports what matters.
		lg = zap.NewNop()
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: dialTimeout,
		TLS:         tlsCfg,
		Logger:      lg,
	})
	if err != nil {
		return nil, fmt.Errorf("storage: etcd client for %s: %w", strings.Join(endpoints, ","), err)
	}
	return client, nil
}

// waitHealthy probes until etcd answers or ctx ends, returning the last
// probe error on timeout.
func (b *Backend) waitHealthy(ctx context.Context) error {
	var last error
	for {
		probeCtx, cancel := context.WithTimeout(ctx, dialTimeout)
		last = b.Healthy(probeCtx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not healthy after %s: %w", b.cfg.StartTimeout, last)
		case <-time.After(healthRetryInterval):
		}
	}
}

// Endpoints are the client URLs of the etcd in use.
func (b *Backend) Endpoints() []string { return slices.Clone(b.endpoints) }

// Client is a ready etcd client; Close closes it.
func (b *Backend) Client() *clientv3.Client { return b.client }

// Prefix is the key prefix for Kubernetes objects.
func (b *Backend) Prefix() string { return b.cfg.Prefix }

// Embedded reports whether this backend runs its own etcd member.
func (b *Backend) Embedded() bool { return b.etcd != nil }

// Transport fills k8s.io/apiserver's storagebackend.Config.Transport.
func (b *Backend) Transport() storagebackend.TransportConfig {
	return storagebackend.TransportConfig{
		ServerList:    b.Endpoints(),
		CertFile:      b.cfg.CertFile,
		KeyFile:       b.cfg.KeyFile,
		TrustedCAFile: b.cfg.CAFile,
	}
}

// StorageConfig is a storagebackend.Config for this backend with the prefix
// and transport set; the caller adds codecs per resource.
func (b *Backend) StorageConfig() storagebackend.Config {
	return storagebackend.Config{Type: storagebackend.StorageTypeETCD3, Prefix: b.cfg.Prefix, Transport: b.Transport()}
}

// Stopped is closed when the embedded member stops, whether through Close
// or on its own after a fatal error; it never closes for external servers.
func (b *Backend) Stopped() <-chan struct{} {
	if b.etcd == nil {
		return nil
	}
	return b.etcd.Server.StopNotify()
}

// Err delivers errors of the embedded member's listeners after start; nil
// (never ready) for external servers.
func (b *Backend) Err() <-chan error {
	if b.etcd == nil {
		return nil
	}
	return b.etcd.Err()
}

// Healthy checks that etcd serves a linearizable read (so a leader exists
// and a quorum answers) and that no alarm, such as NOSPACE, is raised.
func (b *Backend) Healthy(ctx context.Context) error {
	if _, err := b.client.Get(ctx, "health"); err != nil && !errors.Is(err, rpctypes.ErrPermissionDenied) {
		return fmt.Errorf("etcd read failed: %w", err)
	}
	resp, err := b.client.AlarmList(ctx)
	if err != nil {
		if errors.Is(err, rpctypes.ErrPermissionDenied) {
			return nil
		}
		return fmt.Errorf("etcd alarm list failed: %w", err)
	}
	if len(resp.Alarms) > 0 {
		var alarms []string
		for _, a := range resp.Alarms {
			alarms = append(alarms, fmt.Sprintf("%s on member %x", a.Alarm, a.MemberID))
		}
		return fmt.Errorf("etcd alarms raised: %s", strings.Join(alarms, ", "))
	}
	return nil
}

// Close closes the client and then stops the embedded member, waiting
// until it has stopped. It is safe to call more than once.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() {
		if err := b.client.Close(); err != nil && !errors.Is(err, context.Canceled) {
			b.closeErr = fmt.Errorf("storage: close etcd client: %w", err)
		}
		if b.etcd != nil {
			b.logLevel.SetLevel(zap.FatalLevel)
			b.etcd.Close()
			<-b.etcd.Server.StopNotify()
		}
	})
	return b.closeErr
}
