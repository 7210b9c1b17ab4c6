package storage

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const (
	// DefaultClientURL and DefaultPeerURL are where the embedded member
	// listens; loopback only, the well-known etcd ports.
	DefaultClientURL = "http://127.0.0.1:2379"
	DefaultPeerURL   = "http://127.0.0.1:2380"
	// DefaultPrefix is the key prefix Kubernetes uses.
	DefaultPrefix = "/registry"
	// DefaultQuotaBackendBytes: large enough for thousands of objects,
	// small enough to alarm before a small node's disk fills.
	DefaultQuotaBackendBytes int64 = 4 << 30
	// DefaultStartTimeout bounds waiting for etcd to serve; replaying a
	// large WAL on a slow disk takes a while.
	DefaultStartTimeout = 60 * time.Second

	// memberName is fixed: it is recorded in the data directory and must
	// stay the same across restarts.
	memberName = "portal"
	// autoCompactionRetention keeps 5 minutes of history (periodic mode).
	autoCompactionRetention = "5m"
	snapshotCount           = 10000
	minQuotaBackendBytes    = 64 << 20
	maxQuotaBackendBytes    = 8 << 30
)

// Config selects and tunes the backend.
type Config struct {
	// DataDir is portal's data directory; the embedded member uses
	// <DataDir>/etcd. Unused with EtcdServers.
	DataDir string
	// EtcdServers are external etcd client URLs; when set, no embedded
	// member is started.
	EtcdServers []string
	// CAFile, CertFile and KeyFile secure the connection to EtcdServers.
	CAFile   string
	CertFile string
	KeyFile  string

	// ClientURL and PeerURL of the embedded member: http on a loopback IP
	// with an explicit port. DefaultClientURL/DefaultPeerURL when empty.
	ClientURL string
	PeerURL   string
	// QuotaBackendBytes of the embedded member, between 64 MiB and 8 GiB;
	// DefaultQuotaBackendBytes when zero.
	QuotaBackendBytes int64

	// Prefix under which Kubernetes objects are stored; DefaultPrefix when
	// empty.
	Prefix string
	// StartTimeout bounds how long Start waits for etcd to be ready;
	// DefaultStartTimeout when zero.
	StartTimeout time.Duration
	// Logger receives etcd's server and client logs. When nil, the embedded
	// member logs warnings and errors to stderr and the client is silent.
	Logger *zap.Logger
}

// Embedded reports whether cfg asks for an embedded member.
func (c Config) Embedded() bool { return len(c.EtcdServers) == 0 }

// WithDefaults fills empty fields with their defaults.
func WithDefaults(c Config) Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.Embedded() {
		if c.ClientURL == "" {
			c.ClientURL = DefaultClientURL
		}
		if c.PeerURL == "" {
			c.PeerURL = DefaultPeerURL
		}
		if c.QuotaBackendBytes == 0 {
			c.QuotaBackendBytes = DefaultQuotaBackendBytes
		}
	}
	return c
}

// Validate checks a defaulted Config; field paths are the Config field
// names in lower camel case.
func Validate(c Config) field.ErrorList {
	var errs field.ErrorList
	if !strings.HasPrefix(c.Prefix, "/") {
		errs = append(errs, field.Invalid(field.NewPath("prefix"), c.Prefix, "must start with /"))
	}
	if c.StartTimeout < 0 {
		errs = append(errs, field.Invalid(field.NewPath("startTimeout"), c.StartTimeout.String(), "must not be negative"))
	}
	if !c.Embedded() {
		for i, s := range c.EtcdServers {
			p := field.NewPath("etcdServers").Index(i)
			u, err := url.Parse(s)
			switch {
			case err != nil:
				errs = append(errs, field.Invalid(p, s, err.Error()))
			case u.Scheme != "http" && u.Scheme != "https":
				errs = append(errs, field.Invalid(p, s, "scheme must be http or https"))
			case u.Host == "":
				errs = append(errs, field.Invalid(p, s, "must include host and port"))
			}
		}
		if (c.CertFile == "") != (c.KeyFile == "") {
			errs = append(errs, field.Invalid(field.NewPath("keyFile"), c.KeyFile, "certFile and keyFile must be given together"))
		}
		return errs
	}
	if c.DataDir == "" {
		errs = append(errs, field.Required(field.NewPath("dataDir"), "needed for the embedded etcd"))
	}
	for _, f := range []struct{ name, value string }{{"caFile", c.CAFile}, {"certFile", c.CertFile}, {"keyFile", c.KeyFile}} {
		if f.value != "" {
			errs = append(errs, field.Invalid(field.NewPath(f.name), f.value, "only applies to external etcd servers (etcdServers)"))
		}
	}
	clientHost, clientErrs := validateLocalURL(field.NewPath("clientURL"), c.ClientURL)
	errs = append(errs, clientErrs...)
	peerHost, peerErrs := validateLocalURL(field.NewPath("peerURL"), c.PeerURL)
	errs = append(errs, peerErrs...)
	if clientHost != "" && clientHost == peerHost {
		errs = append(errs, field.Invalid(field.NewPath("peerURL"), c.PeerURL, "must use another port than clientURL"))
	}
	if c.QuotaBackendBytes < minQuotaBackendBytes || c.QuotaBackendBytes > maxQuotaBackendBytes {
		errs = append(errs, field.Invalid(field.NewPath("quotaBackendBytes"), c.QuotaBackendBytes, "must be between 64 MiB and 8 GiB"))
	}
	return errs
}

// validateLocalURL checks an embedded listen URL and returns its
// normalised host:port when valid.
func validateLocalURL(p *field.Path, s string) (string, field.ErrorList) {
	u, err := url.Parse(s)
	if err != nil {
		return "", field.ErrorList{field.Invalid(p, s, err.Error())}
	}
	if u.Scheme != "http" {
		return "", field.ErrorList{field.Invalid(p, s, "scheme must be http (the embedded etcd listens on loopback only)")}
	}
	if u.Path != "" && u.Path != "/" {
		return "", field.ErrorList{field.Invalid(p, s, "must not have a path")}
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return "", field.ErrorList{field.Invalid(p, s, "must be host:port")}
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", field.ErrorList{field.Invalid(p, s, "host must be a loopback IP address such as 127.0.0.1")}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", field.ErrorList{field.Invalid(p, s, "port must be between 1 and 65535")}
	}
	return net.JoinHostPort(ip.String(), port), nil
}

// EtcdDir is where the embedded member keeps its data.
func EtcdDir(dataDir string) string { return filepath.Join(dataDir, "etcd") }

// embedConfig translates a validated, defaulted Config into etcd's.
// embedConfig builds the member's configuration. level is the level of
// the default logger (warn), which Close raises so that etcd's complaints
// about its own listeners closing do not look like failures.
func embedConfig(c Config, level zap.AtomicLevel) (*embed.Config, error) {
	clientURL, err := url.Parse(c.ClientURL)
	if err != nil {
		return nil, fmt.Errorf("parse client URL: %w", err)
	}
	peerURL, err := url.Parse(c.PeerURL)
	if err != nil {
		return nil, fmt.Errorf("parse peer URL: %w", err)
	}
	e := embed.NewConfig()
	e.Name = memberName
	e.Dir = EtcdDir(c.DataDir)
	e.ListenClientUrls = []url.URL{*clientURL}
	e.AdvertiseClientUrls = []url.URL{*clientURL}
	e.ListenPeerUrls = []url.URL{*peerURL}
	e.AdvertisePeerUrls = []url.URL{*peerURL}
	e.InitialCluster = e.InitialClusterFromName(memberName)
	e.InitialClusterToken = "portal"
	e.ListenMetricsUrls = nil
	e.EnableGRPCGateway = false
	e.EnablePprof = false

	e.QuotaBackendBytes = c.QuotaBackendBytes
	e.AutoCompactionMode = embed.CompactorModePeriodic
	e.AutoCompactionRetention = autoCompactionRetention
	e.SnapshotCount = snapshotCount
	// One member on loopback: a short tick lets it elect itself quickly at
	// start (the default 100 ms tick and 1 s election timeout are sized for
	// members talking across a network).
	e.TickMs = 10
	e.ElectionMs = 100
	// Durability is not negotiable: every commit is fsynced.
	e.UnsafeNoFsync = false

	e.Logger = "zap"
	lg := c.Logger
	if lg == nil {
		zc := zap.NewProductionConfig()
		zc.Level = level
		zc.OutputPaths, zc.ErrorOutputPaths = []string{"stderr"}, []string{"stderr"}
		zc.Sampling = nil
		built, err := zc.Build()
		if err != nil {
			return nil, fmt.Errorf("etcd logger: %w", err)
		}
		lg = built
	}
	e.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg)
	return e, nil
}
