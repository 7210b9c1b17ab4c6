package pki

import (
	"strings"
	"testing"
)

func TestJoinTokenRoundTrip(t *testing.T) {
	b := ensure(t, Config{Dir: t.TempDir()})
	jt, err := b.JoinToken()
	if err != nil {
		t.Fatal(err)
	}
	secret, hash, err := ParseJoinToken(jt)
	if err != nil {
		t.Fatal(err)
	}
	if secret != b.Token {
		t.Errorf("secret = %q, want %q", secret, b.Token)
	}
	if err := VerifyCA(b.CACertPEM, hash); err != nil {
		t.Errorf("own CA rejected: %v", err)
	}
	other := ensure(t, Config{Dir: t.TempDir()})
	if err := VerifyCA(other.CACertPEM, hash); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("another cluster's CA accepted: %v", err)
	}
}

func TestParseJoinTokenRejects(t *testing.T) {
	for _, s := range []string{
		"portal-0123456789abcdef0123456789abcdef",            // no hash
		"short::sha256:" + strings.Repeat("a", 64),           // short secret
		"portal-0123456789abcdef0123456789abcdef::sha256:zz", // bad hash
	} {
		if _, _, err := ParseJoinToken(s); err == nil {
			t.Errorf("ParseJoinToken(%q) accepted", s)
		}
	}
}
