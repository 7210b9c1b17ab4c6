package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseHosts(t *testing.T) {
	tests := []struct {
		name    string
		hosts   []string
		wantDNS []string
		wantIPs []string
		wantErr string
	}{
		{
			name:    "splits, lower-cases, dedupes and sorts",
			hosts:   []string{"Node-1", "10.0.0.1", "::1", "node-1", " 127.0.0.1 ", "", "10.0.0.1", "a.example"},
			wantDNS: []string{"a.example", "node-1"},
			wantIPs: []string{"10.0.0.1", "127.0.0.1", "::1"},
		},
		{
			name:    "IPv4-mapped IPv6 is stored as IPv4",
			hosts:   []string{"::ffff:192.168.1.5"},
			wantIPs: []string{"192.168.1.5"},
		},
		{
			name:    "rejects names that are not DNS names",
			hosts:   []string{"good", "bad_name", "-x"},
			wantDNS: []string{"good"},
			wantErr: `host "bad_name" is neither an IP address nor a DNS name`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseHosts(tt.hosts)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error = %v, want containing %q", err, tt.wantErr)
			}
			if !slices.Equal(got.DNSNames, tt.wantDNS) {
				t.Errorf("DNS = %v, want %v", got.DNSNames, tt.wantDNS)
			}
			var ips []string
			for _, ip := range got.IPs {
				ips = append(ips, ip.String())
			}
			if !slices.Equal(ips, tt.wantIPs) {
				t.Errorf("IPs = %v, want %v", ips, tt.wantIPs)
			}
		})
	}
}

func TestDefaultHosts(t *testing.T) {
	got := DefaultHosts("cluster.local.")
	want := []string{"127.0.0.1", "::1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	if !slices.Equal(got, want) {
		t.Errorf("DefaultHosts = %v, want %v", got, want)
	}
}

var nodeHosts = []string{"node-a", "192.0.2.10", "10.0.0.1"}

func ensure(t *testing.T, cfg Config) *Bundle {
	t.Helper()
	b, err := Ensure(cfg)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	return b
}

func changedItems(b *Bundle) []string {
	var items []string
	for _, c := range b.Changes {
		items = append(items, c.Item)
	}
	return items
}

func TestEnsureCreatesVerifiableCredentials(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	b := ensure(t, Config{Dir: dir, Hosts: nodeHosts})

	if got, want := changedItems(b), []string{"ca", "serving", "admin", "token"}; !slices.Equal(got, want) {
		t.Errorf("Changes = %v, want %v", got, want)
	}

	if b.CA.Subject.CommonName != "portal-ca" || !b.CA.IsCA {
		t.Errorf("CA subject %q IsCA %v", b.CA.Subject.CommonName, b.CA.IsCA)
	}
	pub, ok := b.CA.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", b.CA.PublicKey)
	}
	if life := b.CA.NotAfter.Sub(b.CA.NotBefore); life < 9*365*24*time.Hour {
		t.Errorf("CA lifetime %v, want ~10 years", life)
	}
	if life := b.Serving.NotAfter.Sub(time.Now()); life < 364*24*time.Hour || life > 366*24*time.Hour {
		t.Errorf("serving cert valid for %v more, want ~1 year", life)
	}

	sans := append(DefaultHosts("cluster.local"), nodeHosts...)
	for _, host := range sans {
		if _, err := b.Serving.Verify(x509.VerifyOptions{
			DNSName:   host,
			Roots:     b.CAPool,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}); err != nil {
			t.Errorf("serving cert does not verify for %q: %v", host, err)
		}
	}
	if _, err := b.Serving.Verify(x509.VerifyOptions{DNSName: "other.example", Roots: b.CAPool}); err == nil {
		t.Error("serving cert verifies for a host it was not issued for")
	}

	if _, err := b.Admin.Verify(x509.VerifyOptions{
		Roots:     b.CAPool,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		t.Errorf("admin cert does not verify for client auth: %v", err)
	}
	if b.Admin.Subject.CommonName != "portal-admin" || !slices.Equal(b.Admin.Subject.Organization, []string{"system:masters"}) {
		t.Errorf("admin subject = %v", b.Admin.Subject)
	}
	if _, err := b.Admin.Verify(x509.VerifyOptions{
		Roots:     b.CAPool,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err == nil {
		t.Error("admin cert verifies for server auth")
	}

	// Files on disk match what the bundle reports.
	onDisk, err := os.ReadFile(b.CACertFile)
	if err != nil || !bytes.Equal(onDisk, b.CACertPEM) {
		t.Errorf("ca.crt on disk differs from bundle (err %v)", err)
	}
}

func TestEnsureFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	ensure(t, Config{Dir: dir})
	want := map[string]os.FileMode{
		"":            0o700 | os.ModeDir,
		"ca.key":      0o600,
		"serving.key": 0o600,
		"admin.key":   0o600,
		"token":       0o600,
		"ca.crt":      0o644,
		"serving.crt": 0o644,
		"admin.crt":   0o644,
	}
	for name, mode := range want {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", filepath.Join("tls", name), fi.Mode(), mode)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestEnsureReusesExistingCredentials(t *testing.T) {
	dir := t.TempDir()
	first := ensure(t, Config{Dir: dir, Hosts: nodeHosts})
	second := ensure(t, Config{Dir: dir, Hosts: nodeHosts})
	if len(second.Changes) != 0 {
		t.Errorf("second Ensure changed %v", second.Changes)
	}
	// A subset of the hosts is still covered: nothing to do.
	third := ensure(t, Config{Dir: dir, Hosts: nodeHosts[:1]})
	if len(third.Changes) != 0 {
		t.Errorf("Ensure with fewer hosts changed %v", third.Changes)
	}
	for _, b := range []*Bundle{second, third} {
		if !b.CA.Equal(first.CA) || !b.Serving.Equal(first.Serving) || !b.Admin.Equal(first.Admin) || b.Token != first.Token {
			t.Error("credentials differ after re-running Ensure")
		}
	}
}

func TestEnsureNewHostRegeneratesOnlyServing(t *testing.T) {
	dir := t.TempDir()
	first := ensure(t, Config{Dir: dir, Hosts: nodeHosts})
	second := ensure(t, Config{Dir: dir, Hosts: append(slices.Clone(nodeHosts), "203.0.113.7", "api.example")})

	if got := changedItems(second); !slices.Equal(got, []string{"serving"}) {
		t.Fatalf("Changes = %v, want [serving]", second.Changes)
	}
	if want := "SANs do not cover the requested hosts"; second.Changes[0].Reason != want {
		t.Errorf("reason = %q, want %q", second.Changes[0].Reason, want)
	}
	if !second.CA.Equal(first.CA) || !second.Admin.Equal(first.Admin) || second.Token != first.Token {
		t.Error("CA, admin cert or token changed")
	}
	if second.Serving.Equal(first.Serving) {
		t.Fatal("serving cert was not regenerated")
	}
	for _, host := range []string{"203.0.113.7", "api.example", "node-a"} {
		if _, err := second.Serving.Verify(x509.VerifyOptions{DNSName: host, Roots: second.CAPool}); err != nil {
			t.Errorf("new serving cert does not cover %q: %v", host, err)
		}
	}
	// The cluster domain is part of the requested SANs too.
	third := ensure(t, Config{Dir: dir, Hosts: nodeHosts, ClusterDomain: "corp.internal"})
	if got := changedItems(third); !slices.Equal(got, []string{"serving"}) {
		t.Errorf("changing the cluster domain changed %v, want [serving]", third.Changes)
	}
	if !slices.Contains(third.Serving.DNSNames, "kubernetes.default.svc.corp.internal") {
		t.Errorf("serving DNS names %v lack the cluster-domain name", third.Serving.DNSNames)
	}
}

func TestEnsureRenewsLeavesNearExpiry(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	first := ensure(t, Config{Dir: dir, Now: func() time.Time { return start }})

	later := start.Add(340 * 24 * time.Hour)
	second := ensure(t, Config{Dir: dir, Now: func() time.Time { return later }})
	if got := changedItems(second); !slices.Equal(got, []string{"serving", "admin"}) {
		t.Fatalf("Changes = %v, want serving and admin renewed", second.Changes)
	}
	if !strings.Contains(second.Changes[0].Reason, "within the renewal window") {
		t.Errorf("reason = %q", second.Changes[0].Reason)
	}
	if !second.CA.Equal(first.CA) {
		t.Error("CA was replaced although it is valid")
	}

	expired := start.Add(11 * 365 * 24 * time.Hour)
	third := ensure(t, Config{Dir: dir, Now: func() time.Time { return expired }})
	if got := changedItems(third); !slices.Equal(got, []string{"ca", "serving", "admin"}) {
		t.Fatalf("after CA expiry Changes = %v, want ca, serving, admin", third.Changes)
	}
	if !strings.HasPrefix(third.Changes[0].Reason, "CA expired at ") {
		t.Errorf("CA reason = %q", third.Changes[0].Reason)
	}
}

func TestEnsureReplacesDamagedFiles(t *testing.T) {
	otherKey := func(t *testing.T, dir string) []byte {
		t.Helper()
		b := ensure(t, Config{Dir: t.TempDir()})
		data, err := os.ReadFile(b.ServingKeyFile)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	tests := []struct {
		name        string
		damage      func(t *testing.T, dir string)
		wantChanges []string
		wantReason  string
	}{
		{
			name: "garbage serving key",
			damage: func(t *testing.T, dir string) {
				writeTestFile(t, filepath.Join(dir, "serving.key"), []byte("garbage"))
			},
			wantChanges: []string{"serving"},
			wantReason:  "no private key PEM block",
		},
		{
			name: "admin key of another pair",
			damage: func(t *testing.T, dir string) {
				writeTestFile(t, filepath.Join(dir, "admin.key"), otherKey(t, dir))
			},
			wantChanges: []string{"admin"},
			wantReason:  "private key does not match certificate",
		},
		{
			name: "missing serving cert",
			damage: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, "serving.crt")); err != nil {
					t.Fatal(err)
				}
			},
			wantChanges: []string{"serving"},
			wantReason:  "certificate or key missing",
		},
		{
			name: "missing CA reissues every certificate",
			damage: func(t *testing.T, dir string) {
				for _, f := range []string{"ca.crt", "ca.key"} {
					if err := os.Remove(filepath.Join(dir, f)); err != nil {
						t.Fatal(err)
					}
				}
			},
			wantChanges: []string{"ca", "serving", "admin"},
			wantReason:  "not found",
		},
		{
			name: "admin cert signed by a foreign CA",
			damage: func(t *testing.T, dir string) {
				other := ensure(t, Config{Dir: t.TempDir()})
				writeTestFile(t, filepath.Join(dir, "admin.crt"), other.AdminCertPEM)
				writeTestFile(t, filepath.Join(dir, "admin.key"), other.AdminKeyPEM)
			},
			wantChanges: []string{"admin"},
			wantReason:  "not signed by the current CA",
		},
		{
			name: "empty token",
			damage: func(t *testing.T, dir string) {
				writeTestFile(t, filepath.Join(dir, "token"), []byte("\n"))
			},
			wantChanges: []string{"token"},
			wantReason:  "malformed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ensure(t, Config{Dir: dir})
			tt.damage(t, dir)
			b := ensure(t, Config{Dir: dir})
			if got := changedItems(b); !slices.Equal(got, tt.wantChanges) {
				t.Fatalf("Changes = %v, want %v", b.Changes, tt.wantChanges)
			}
			if !strings.HasPrefix(b.Changes[0].Reason, tt.wantReason) {
				t.Errorf("reason = %q, want prefix %q", b.Changes[0].Reason, tt.wantReason)
			}
			if again := ensure(t, Config{Dir: dir}); len(again.Changes) != 0 {
				t.Errorf("repaired directory still changes: %v", again.Changes)
			}
		})
	}
}

func TestEnsureConcurrentCallsAgree(t *testing.T) {
	dir := t.TempDir()
	const n = 6
	bundles := make([]*Bundle, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bundles[i], errs[i] = Ensure(Config{Dir: dir, Hosts: nodeHosts})
		}()
	}
	wg.Wait()
	generated := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Ensure %d: %v", i, errs[i])
		}
		if len(bundles[i].Changes) > 0 {
			generated++
		}
		if !bundles[i].CA.Equal(bundles[0].CA) || !bundles[i].Serving.Equal(bundles[0].Serving) || bundles[i].Token != bundles[0].Token {
			t.Errorf("Ensure %d returned different credentials", i)
		}
	}
	if generated != 1 {
		t.Errorf("%d concurrent calls generated credentials, want exactly 1", generated)
	}
}

func TestEnsureRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"no dir", Config{}, "pki: directory is required"},
		{"bad host", Config{Dir: t.TempDir(), Hosts: []string{"under_score"}}, `pki: serving certificate hosts: host "under_score" is neither an IP address nor a DNS name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Ensure(tt.cfg)
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want prefix %q", err, tt.wantErr)
			}
		})
	}
}

func TestIssueClientCertificate(t *testing.T) {
	b := ensure(t, Config{Dir: t.TempDir()})
	certPEM, keyPEM, err := b.IssueClientCertificate("system:node:node-a", []string{"system:nodes"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pair, err := parseKeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if pair.cert.Subject.CommonName != "system:node:node-a" || !slices.Equal(pair.cert.Subject.Organization, []string{"system:nodes"}) {
		t.Errorf("subject = %v", pair.cert.Subject)
	}
	if _, err := pair.cert.Verify(x509.VerifyOptions{Roots: b.CAPool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("issued cert does not verify: %v", err)
	}
	if _, _, err := (&Bundle{}).IssueClientCertificate("x", nil, time.Now()); err == nil {
		t.Error("a bundle without CA key issued a certificate")
	}
}

func TestParseKeyPairAcceptsPKCS8(t *testing.T) {
	b := ensure(t, Config{Dir: t.TempDir()})
	block, _ := pem.Decode(b.AdminKeyPEM)
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if _, err := parseKeyPair(b.AdminCertPEM, pkcs8); err != nil {
		t.Errorf("PKCS#8 key rejected: %v", err)
	}
}

func TestCoversIP(t *testing.T) {
	b := ensure(t, Config{Dir: t.TempDir(), Hosts: []string{"10.0.0.1"}})
	if !Covers(b.Serving, SANs{IPs: []net.IP{net.ParseIP("10.0.0.1")}}) {
		t.Error("16-byte form of a covered IPv4 address not recognised")
	}
	if Covers(b.Serving, SANs{IPs: []net.IP{net.ParseIP("10.0.0.2")}}) {
		t.Error("uncovered IP reported as covered")
	}
}

func writeTestFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestEnsureTightensLoosenedSecrets(t *testing.T) {
	dir := t.TempDir()
	ensure(t, Config{Dir: dir})
	for _, name := range []string{"ca.key", "serving.key", "admin.key", "token"} {
		if err := os.Chmod(filepath.Join(dir, name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if b := ensure(t, Config{Dir: dir}); len(b.Changes) != 0 {
		t.Fatalf("Changes = %v, want none", b.Changes)
	}
	for _, name := range []string{"ca.key", "serving.key", "admin.key", "token"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v after Ensure, want 0600", name, fi.Mode().Perm())
		}
	}
}
