package storage

import (
	"go.uber.org/zap"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

func TestWithDefaults(t *testing.T) {
	got := WithDefaults(Config{DataDir: "/var/lib/portal"})
	if got.ClientURL != "http://127.0.0.1:2379" || got.PeerURL != "http://127.0.0.1:2380" {
		t.Errorf("URLs = %s, %s", got.ClientURL, got.PeerURL)
	}
	if got.Prefix != "/registry" || got.QuotaBackendBytes != 4<<30 || got.StartTimeout != 60*time.Second {
		t.Errorf("defaults = %+v", got)
	}
	ext := WithDefaults(Config{EtcdServers: []string{"https://etcd:2379"}})
	if ext.ClientURL != "" || ext.PeerURL != "" || ext.QuotaBackendBytes != 0 {
		t.Errorf("external config got embedded defaults: %+v", ext)
	}
}

func TestValidate(t *testing.T) {
	embedded := func(mut func(*Config)) Config {
		c := WithDefaults(Config{DataDir: "/d"})
		mut(&c)
		return c
	}
	external := func(mut func(*Config)) Config {
		c := WithDefaults(Config{EtcdServers: []string{"https://10.1.1.1:2379"}})
		mut(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"embedded defaults", embedded(func(*Config) {}), nil},
		{"external defaults", external(func(*Config) {}), nil},
		{"embedded IPv6 loopback", embedded(func(c *Config) { c.ClientURL = "http://[::1]:12379" }), nil},
		{
			"no data dir",
			embedded(func(c *Config) { c.DataDir = "" }),
			[]string{"dataDir: Required value: needed for the embedded etcd"},
		},
		{
			"non-loopback listen",
			embedded(func(c *Config) { c.ClientURL = "http://0.0.0.0:2379"; c.PeerURL = "http://localhost:2380" }),
			[]string{
				`clientURL: Invalid value: "http://0.0.0.0:2379": host must be a loopback IP address such as 127.0.0.1`,
				`peerURL: Invalid value: "http://localhost:2380": host must be a loopback IP address such as 127.0.0.1`,
			},
		},
		{
			"https and port zero",
			embedded(func(c *Config) { c.ClientURL = "https://127.0.0.1:2379"; c.PeerURL = "http://127.0.0.1:0" }),
			[]string{
				`clientURL: Invalid value: "https://127.0.0.1:2379": scheme must be http (the embedded etcd listens on loopback only)`,
				`peerURL: Invalid value: "http://127.0.0.1:0": port must be between 1 and 65535`,
			},
		},
		{
			"same port twice",
			embedded(func(c *Config) { c.PeerURL = "http://127.0.0.1:2379" }),
			[]string{`peerURL: Invalid value: "http://127.0.0.1:2379": must use another port than clientURL`},
		},
		{
			"quota too big and TLS files without servers",
			embedded(func(c *Config) { c.QuotaBackendBytes = 16 << 30; c.CAFile = "/ca.crt" }),
			[]string{
				`caFile: Invalid value: "/ca.crt": only applies to external etcd servers (etcdServers)`,
				`quotaBackendBytes: Invalid value: 17179869184: must be between 64 MiB and 8 GiB`,
			},
		},
		{
			"bad prefix",
			embedded(func(c *Config) { c.Prefix = "registry" }),
			[]string{`prefix: Invalid value: "registry": must start with /`},
		},
		{
			"external server URLs",
			external(func(c *Config) { c.EtcdServers = []string{"https://a:2379", "etcd:2379", "http://"} }),
			[]string{
				`etcdServers[1]: Invalid value: "etcd:2379": scheme must be http or https`,
				`etcdServers[2]: Invalid value: "http://": must include host and port`,
			},
		},
		{
			"cert without key",
			external(func(c *Config) { c.CertFile = "/c.crt" }),
			[]string{`keyFile: Invalid value: "": certFile and keyFile must be given together`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, e := range Validate(tt.cfg) {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestEmbedConfigTuning(t *testing.T) {
	c := WithDefaults(Config{DataDir: "/var/lib/portal", ClientURL: "http://127.0.0.1:12379", PeerURL: "http://127.0.0.1:12380"})
	e, err := embedConfig(c, zap.NewAtomicLevelAt(zap.WarnLevel))
	if err == nil && (e.TickMs != 10 || e.ElectionMs != 100) {
		t.Errorf("tick %d ms, election %d ms: a single loopback member should elect itself fast", e.TickMs, e.ElectionMs)
	}
	if err != nil {
		t.Fatal(err)
	}
	if e.UnsafeNoFsync {
		t.Error("fsync disabled: acknowledged writes could be lost")
	}
	if e.Dir != filepath.Join("/var/lib/portal", "etcd") {
		t.Errorf("Dir = %s", e.Dir)
	}
	if e.ListenClientUrls[0].String() != "http://127.0.0.1:12379" || e.AdvertiseClientUrls[0].String() != "http://127.0.0.1:12379" {
		t.Errorf("client URLs = %v / %v", e.ListenClientUrls, e.AdvertiseClientUrls)
	}
	if e.ListenPeerUrls[0].String() != "http://127.0.0.1:12380" || e.InitialCluster != "portal=http://127.0.0.1:12380" {
		t.Errorf("peer URLs = %v, initial cluster %q", e.ListenPeerUrls, e.InitialCluster)
	}
	if len(e.ListenMetricsUrls) != 0 || e.EnableGRPCGateway || e.EnablePprof {
		t.Error("extra listeners or handlers enabled")
	}
	if e.QuotaBackendBytes != 4<<30 || e.AutoCompactionMode != embed.CompactorModePeriodic || e.AutoCompactionRetention != "5m" || e.SnapshotCount != 10000 {
		t.Errorf("tuning: quota %d compaction %s/%s snapshots %d", e.QuotaBackendBytes, e.AutoCompactionMode, e.AutoCompactionRetention, e.SnapshotCount)
	}
	if e.ZapLoggerBuilder == nil {
		t.Error("no logger: etcd would log at info level")
	}
	if err := e.Validate(); err != nil {
		t.Errorf("etcd rejects the config: %v", err)
	}
}
