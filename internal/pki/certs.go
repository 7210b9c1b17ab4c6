package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

const (
	// CACommonName is the subject of the cluster CA.
	CACommonName = "portal-ca"
	// ServingCommonName is the subject of the API server's serving cert;
	// clients match on SANs, the CN only helps a human reading the cert.
	ServingCommonName = "portal-apiserver"
	// AdminCommonName and AdminGroup make the admin cert a cluster-admin
	// through the system:masters group, which RBAC never restricts.
	AdminCommonName = "portal-admin"
	AdminGroup      = "system:masters"

	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 365 * 24 * time.Hour
	// leafRenewBefore replaces leaf certificates a month before they expire
	// so a server restarted now and then never serves an expired cert.
	leafRenewBefore = 30 * 24 * time.Hour
	// backdate tolerates clocks of other machines running a little behind.
	backdate = time.Hour

	pemCertificate  = "CERTIFICATE"
	pemECPrivateKey = "EC PRIVATE KEY"
	pemPKCS8Key     = "PRIVATE KEY"
)

// SANs is the parsed form of a host list: DNS names and IP addresses.
type SANs struct {
	DNSNames []string
	IPs      []net.IP
}

// ParseHosts splits host strings into DNS and IP SANs, lower-casing names,
// dropping empties and duplicates and sorting so the result is stable.
func ParseHosts(hosts []string) (SANs, error) {
	var s SANs
	var errs []error
	seenIP := map[string]bool{}
	seenDNS := map[string]bool{}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if ip4 := ip.To4(); ip4 != nil {
				ip = ip4
			}
			if !seenIP[ip.String()] {
				seenIP[ip.String()] = true
				s.IPs = append(s.IPs, ip)
			}
			continue
		}
		name := strings.ToLower(h)
		if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("host %q is neither an IP address nor a DNS name: %s", h, strings.Join(msgs, "; ")))
			continue
		}
		if !seenDNS[name] {
			seenDNS[name] = true
			s.DNSNames = append(s.DNSNames, name)
		}
	}
	slices.Sort(s.DNSNames)
	// IPv4 (stored in 4 bytes) sorts before IPv6.
	slices.SortFunc(s.IPs, func(a, b net.IP) int {
		if len(a) != len(b) {
			return len(a) - len(b)
		}
		return bytes.Compare(a, b)
	})
	return s, errors.Join(errs...)
}

// DefaultHosts is the host list every serving certificate covers: loopback,
// the in-cluster names of the kubernetes service and, when given, the
// cluster-domain qualified name.
func DefaultHosts(clusterDomain string) []string {
	hosts := []string{
		"127.0.0.1", "::1", "localhost",
		"kubernetes", "kubernetes.default", "kubernetes.default.svc",
	}
	if d := strings.Trim(clusterDomain, "."); d != "" {
		hosts = append(hosts, "kubernetes.default.svc."+d)
	}
	return hosts
}

// Covers reports whether cert carries every SAN in want.
func Covers(cert *x509.Certificate, want SANs) bool {
	for _, name := range want.DNSNames {
		if !slices.ContainsFunc(cert.DNSNames, func(n string) bool { return strings.EqualFold(n, name) }) {
			return false
		}
	}
	for _, ip := range want.IPs {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ECDSA P-256 key: %w", err)
	}
	return key, nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return n, nil
}

// keyPair is a certificate with its key, in parsed and PEM form.
type keyPair struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
	keyPEM  []byte
}

func newCA(now time.Time) (*keyPair, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: CACommonName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// Only leaves are signed: an intermediate would be a surprise.
		MaxPathLenZero: true,
	}
	return sign(tmpl, key, nil)
}

// leafSpec describes an end-entity certificate to issue.
type leafSpec struct {
	subject pkix.Name
	usage   x509.ExtKeyUsage
	sans    SANs
}

func issue(ca *keyPair, spec leafSpec, now time.Time) (*keyPair, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(leafValidity)
	// A leaf outliving its issuer would fail verification anyway.
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               spec.subject,
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{spec.usage},
		BasicConstraintsValid: true,
		DNSNames:              spec.sans.DNSNames,
		IPAddresses:           spec.sans.IPs,
	}
	return sign(tmpl, key, ca)
}

// sign self-signs tmpl when parent is nil.
func sign(tmpl *x509.Certificate, key *ecdsa.PrivateKey, parent *keyPair) (*keyPair, error) {
	parentCert, parentKey := tmpl, crypto.Signer(key)
	if parent != nil {
		parentCert, parentKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), parentKey)
	if err != nil {
		return nil, fmt.Errorf("create certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse new certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal key of %q: %w", tmpl.Subject.CommonName, err)
	}
	return &keyPair{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: pemECPrivateKey, Bytes: keyDER}),
	}, nil
}

// parseKeyPair parses PEM data and checks that the key belongs to the
// certificate. Only the first certificate block is used.
func parseKeyPair(certPEM, keyPEM []byte) (*keyPair, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != pemCertificate {
		return nil, errors.New("no CERTIFICATE PEM block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	key, err := parsePrivateKey(keyPEM)
	if err != nil {
		return nil, err
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("private key does not match certificate")
	}
	return &keyPair{cert: cert, key: key, certPEM: certPEM, keyPEM: keyPEM}, nil
}

func parsePrivateKey(keyPEM []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("no private key PEM block")
	}
	switch block.Type {
	case pemECPrivateKey:
		key, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse EC private key: %w", err)
		}
		return key, nil
	case pemPKCS8Key:
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PKCS#8 private key: %w", err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("PKCS#8 key of type %T cannot sign", key)
		}
		return signer, nil
	default:
		return nil, fmt.Errorf("unsupported private key PEM block %q", block.Type)
	}
}

// checkCA explains why a loaded CA cannot be reused, or returns nil.
func checkCA(ca *keyPair, now time.Time) error {
	if !ca.cert.IsCA || ca.cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return errors.New("certificate is not a CA")
	}
	if now.After(ca.cert.NotAfter) {
		return fmt.Errorf("CA expired at %s", ca.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// checkLeaf explains why a loaded leaf cannot be reused, or returns nil.
func checkLeaf(leaf *keyPair, ca *keyPair, spec leafSpec, now time.Time) error {
	if err := leaf.cert.CheckSignatureFrom(ca.cert); err != nil {
		return fmt.Errorf("not signed by the current CA: %w", err)
	}
	if now.Add(leafRenewBefore).After(leaf.cert.NotAfter) {
		return fmt.Errorf("expires at %s, within the renewal window", leaf.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if !slices.Contains(leaf.cert.ExtKeyUsage, spec.usage) {
		return errors.New("missing the required extended key usage")
	}
	if leaf.cert.Subject.CommonName != spec.subject.CommonName ||
		!slices.Equal(leaf.cert.Subject.Organization, spec.subject.Organization) {
		return fmt.Errorf("subject %q does not match %q", leaf.cert.Subject, spec.subject)
	}
	if !Covers(leaf.cert, spec.sans) {
		return errors.New("SANs do not cover the requested hosts")
	}
	return nil
}
