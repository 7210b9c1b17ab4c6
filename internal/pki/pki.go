package pki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// File names inside Config.Dir.
const (
	CACertFileName      = "ca.crt"
	CAKeyFileName       = "ca.key"
	ServingCertFileName = "serving.crt"
	ServingKeyFileName  = "serving.key"
	AdminCertFileName   = "admin.crt"
	AdminKeyFileName    = "admin.key"
	TokenFileName       = "token"

	// DefaultClusterDomain qualifies the kubernetes service name when
	// Config.ClusterDomain is empty.
	DefaultClusterDomain = "cluster.local"
)

// Config says where credentials live and what the serving cert must cover.
type Config struct {
	// Dir holds every file; created 0700 if missing.
	Dir string
	// Hosts are extra DNS names and IP addresses for the serving cert: the
	// node's hostname and addresses and the first service IP. Loopback and
	// the kubernetes service names (DefaultHosts) are always added.
	Hosts []string
	// ClusterDomain completes kubernetes.default.svc.<domain>;
	// DefaultClusterDomain when empty.
	ClusterDomain string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Change records one credential that Ensure (re)generated and why, so the
// caller can log it: a regenerated CA means every agent must rejoin.
type Change struct {
	// Item is "ca", "serving", "admin" or "token".
	Item   string
	Reason string
}

// Bundle is the result of Ensure: where the files are and their parsed form.
type Bundle struct {
	Dir string

	CACertFile      string
	CAKeyFile       string
	ServingCertFile string
	ServingKeyFile  string
	AdminCertFile   string
	AdminKeyFile    string
	TokenFile       string

	CA      *x509.Certificate
	CAPool  *x509.CertPool
	Serving *x509.Certificate
	Admin   *x509.Certificate

	// PEM data for embedding in kubeconfigs.
	CACertPEM    []byte
	AdminCertPEM []byte
	AdminKeyPEM  []byte

	// Token is the join token agents present.
	Token string

	// Changes lists what this call generated; empty when everything on
	// disk was reused.
	Changes []Change

	ca *keyPair
}

// Ensure loads the credentials in cfg.Dir, generating whatever is missing or
// no longer usable, and returns them.
func Ensure(cfg Config) (*Bundle, error) {
	if cfg.Dir == "" {
		return nil, errors.New("pki: directory is required")
	}
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	domain := cfg.ClusterDomain
	if domain == "" {
		domain = DefaultClusterDomain
	}
	sans, err := ParseHosts(append(DefaultHosts(domain), cfg.Hosts...))
	if err != nil {
		return nil, fmt.Errorf("pki: serving certificate hosts: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: create %s: %w", cfg.Dir, err)
	}
	unlock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	defer unlock()

	b := newBundle(cfg.Dir)
	t := now()

	ca, err := ensureCA(b, t)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	b.ca = ca
	b.CA = ca.cert
	b.CACertPEM = ca.certPEM
	b.CAPool = x509.NewCertPool()
	b.CAPool.AddCert(ca.cert)

	serving, err := ensureLeaf(b, "serving", b.ServingCertFile, b.ServingKeyFile, leafSpec{
		subject: pkix.Name{CommonName: ServingCommonName},
		usage:   x509.ExtKeyUsageServerAuth,
		sans:    sans,
	}, t)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	b.Serving = serving.cert

	admin, err := ensureLeaf(b, "admin", b.AdminCertFile, b.AdminKeyFile, leafSpec{
		subject: pkix.Name{CommonName: AdminCommonName, Organization: []string{AdminGroup}},
		usage:   x509.ExtKeyUsageClientAuth,
	}, t)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	b.Admin = admin.cert
	b.AdminCertPEM = admin.certPEM
	b.AdminKeyPEM = admin.keyPEM

	if err := ensureToken(b); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return b, nil
}

func newBundle(dir string) *Bundle {
	return &Bundle{
		Dir:             dir,
		CACertFile:      filepath.Join(dir, CACertFileName),
		CAKeyFile:       filepath.Join(dir, CAKeyFileName),
		ServingCertFile: filepath.Join(dir, ServingCertFileName),
		ServingKeyFile:  filepath.Join(dir, ServingKeyFileName),
		AdminCertFile:   filepath.Join(dir, AdminCertFileName),
		AdminKeyFile:    filepath.Join(dir, AdminKeyFileName),
		TokenFile:       filepath.Join(dir, TokenFileName),
	}
}

// loadPair reads a cert/key pair. It returns a nil pair and a reason when
// the pair is absent or unusable, and an error only for I/O failures that
// regenerating would not fix (such as permission denied).
func loadPair(certFile, keyFile string) (pair *keyPair, reason string, err error) {
	certPEM, err := readOptional(certFile)
	if err != nil {
		return nil, "", err
	}
	keyPEM, err := readOptional(keyFile)
	if err != nil {
		return nil, "", err
	}
	if certPEM == nil && keyPEM == nil {
		return nil, "not found", nil
	}
	if certPEM == nil || keyPEM == nil {
		return nil, "certificate or key missing", nil
	}
	pair, perr := parseKeyPair(certPEM, keyPEM)
	if perr != nil {
		return nil, perr.Error(), nil
	}
	return pair, "", nil
}

func ensureCA(b *Bundle, now time.Time) (*keyPair, error) {
	ca, reason, err := loadPair(b.CACertFile, b.CAKeyFile)
	if err != nil {
		return nil, err
	}
	if ca != nil {
		cerr := checkCA(ca, now)
		if cerr == nil {
			return ca, restrictMode(b.CAKeyFile)
		}
		reason = cerr.Error()
	}
	ca, err = newCA(now)
	if err != nil {
		return nil, err
	}
	if err := writePair(b.CACertFile, b.CAKeyFile, ca); err != nil {
		return nil, err
	}
	b.Changes = append(b.Changes, Change{Item: "ca", Reason: reason})
	return ca, nil
}

func ensureLeaf(b *Bundle, item, certFile, keyFile string, spec leafSpec, now time.Time) (*keyPair, error) {
	leaf, reason, err := loadPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	if leaf != nil {
		lerr := checkLeaf(leaf, b.ca, spec, now)
		if lerr == nil {
			return leaf, restrictMode(keyFile)
		}
		reason = lerr.Error()
	}
	leaf, err = issue(b.ca, spec, now)
	if err != nil {
		return nil, err
	}
	if err := writePair(certFile, keyFile, leaf); err != nil {
		return nil, err
	}
	b.Changes = append(b.Changes, Change{Item: item, Reason: reason})
	return leaf, nil
}

// writePair writes the key before the certificate: a crash in between leaves
// a mismatched pair that the next Ensure detects and replaces.
func writePair(certFile, keyFile string, p *keyPair) error {
	if err := writeFileAtomic(keyFile, p.keyPEM, 0o600); err != nil {
		return err
	}
	return writeFileAtomic(certFile, p.certPEM, 0o644)
}

// IssueClientCertificate signs a new client certificate with the bundle's CA,
// e.g. for a node (CN system:node:<name>, group system:nodes). It returns PEM
// certificate and key; validity is capped at one year and at the CA's expiry.
func (b *Bundle) IssueClientCertificate(commonName string, groups []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	if b.ca == nil {
		return nil, nil, errors.New("pki: bundle has no CA key; use the result of Ensure")
	}
	if commonName == "" {
		return nil, nil, errors.New("pki: client certificate needs a common name")
	}
	pair, err := issue(b.ca, leafSpec{
		subject: pkix.Name{CommonName: commonName, Organization: slices.Clone(groups)},
		usage:   x509.ExtKeyUsageClientAuth,
	}, now)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	return pair.certPEM, pair.keyPEM, nil
}
