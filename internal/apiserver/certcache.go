package apiserver

import (
	"crypto/sha256"
	"net/http"
	"sync"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
)

// certCache remembers which client certificates the x509 authenticator
// accepted. k8s.io/apiserver verifies the chain on every request (the TLS
// handshake only requests the certificate, so the CA can be reloaded), and
// that ECDSA verification was ~8% of the CPU of a mutating request here.
// The cluster CA does not change while the server runs, so a verified
// certificate stays verified until it expires; entries are also dropped
// after a minute so the map stays small.
type certCache struct {
	inner authenticator.Request
	mu    sync.Mutex
	m     map[[32]byte]certCacheEntry
}

type certCacheEntry struct {
	resp    *authenticator.Response
	expires time.Time
}

const certCacheTTL = time.Minute

func newCertCache(inner authenticator.Request) *certCache {
	return &certCache{inner: inner, m: map[[32]byte]certCacheEntry{}}
}

func (c *certCache) AuthenticateRequest(req *http.Request) (*authenticator.Response, bool, error) {
	if req.TLS == nil || len(req.TLS.PeerCertificates) == 0 {
		return c.inner.AuthenticateRequest(req)
	}
	leaf := req.TLS.PeerCertificates[0]
	h := sha256.New()
	for _, cert := range req.TLS.PeerCertificates {
		h.Write(cert.Raw)
	}
	var key [32]byte
	copy(key[:], h.Sum(nil))
	now := time.Now()
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return copyResponse(e.resp), true, nil
	}
	resp, ok, err := c.inner.AuthenticateRequest(req)
	if err != nil || !ok {
		return resp, ok, err
	}
	exp := now.Add(certCacheTTL)
	if leaf.NotAfter.Before(exp) {
		exp = leaf.NotAfter
	}
	c.mu.Lock()
	if len(c.m) > 10000 {
		clear(c.m)
	}
	c.m[key] = certCacheEntry{resp: resp, expires: exp}
	c.mu.Unlock()
	return copyResponse(resp), true, nil
}

// copyResponse gives each request its own user: later filters add groups.
func copyResponse(r *authenticator.Response) *authenticator.Response {
	u := r.User
	return &authenticator.Response{Audiences: r.Audiences, User: &user.DefaultInfo{
		Name: u.GetName(), UID: u.GetUID(),
		Groups: append([]string(nil), u.GetGroups()...),
		Extra:  u.GetExtra(),
	}}
}
