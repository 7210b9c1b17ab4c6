package pki

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func TestTokenCreatedOnceAndLoadable(t *testing.T) {
	dir := t.TempDir()
	b := ensure(t, Config{Dir: dir})
	if !regexp.MustCompile(`^portal-[0-9a-f]{32}$`).MatchString(b.Token) {
		t.Errorf("token %q does not look like portal-<32 hex>", b.Token)
	}
	got, err := LoadToken(dir)
	if err != nil || got != b.Token {
		t.Errorf("LoadToken = %q, %v; want %q", got, err, b.Token)
	}
	if again := ensure(t, Config{Dir: dir}); again.Token != b.Token {
		t.Error("token changed on second Ensure")
	}
}

func TestHandWrittenTokenIsKept(t *testing.T) {
	dir := t.TempDir()
	writeTestFile(t, filepath.Join(dir, "token"), []byte("my-own-secret-token-1234\n"))
	b := ensure(t, Config{Dir: dir})
	if b.Token != "my-own-secret-token-1234" {
		t.Errorf("token = %q, want the hand-written one", b.Token)
	}
}

func TestLoadTokenErrors(t *testing.T) {
	missing := t.TempDir()
	short := t.TempDir()
	writeTestFile(t, filepath.Join(short, "token"), []byte("abc"))
	tests := []struct {
		dir     string
		wantErr string
	}{
		{missing, "pki: no join token at " + filepath.Join(missing, "token") + ": start the server once to create it"},
		{short, "pki: " + filepath.Join(short, "token") + " does not hold a valid join token (want at least 16 printable characters)"},
	}
	for _, tt := range tests {
		_, err := LoadToken(tt.dir)
		if err == nil || err.Error() != tt.wantErr {
			t.Errorf("LoadToken error = %v, want %q", err, tt.wantErr)
		}
	}
}

func TestValidToken(t *testing.T) {
	tests := map[string]bool{
		"portal-0123456789abcdef0123456789abcdef": true,
		"sixteen-chars-ok":                        true,
		"too-short":                               false,
		"has a space in the middle":               false,
		"tab\tinside-the-token-value":             false,
		"non-ascii-é-token-value":                 false,
	}
	for tok, want := range tests {
		if got := ValidToken(tok); got != want {
			t.Errorf("ValidToken(%q) = %v, want %v", tok, got, want)
		}
	}
	tok, err := NewToken()
	if err != nil || !ValidToken(tok) {
		t.Errorf("NewToken = %q, %v: not valid", tok, err)
	}
}

func TestWriteKubeconfigWorksAgainstServingCert(t *testing.T) {
	b := ensure(t, Config{Dir: t.TempDir()})

	servingPair, err := tls.LoadX509KeyPair(b.ServingCertFile, b.ServingKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := r.TLS.PeerCertificates[0]
		fmt.Fprintf(w, "%s/%s", c.Subject.CommonName, strings.Join(c.Subject.Organization, ","))
	}))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{servingPair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    b.CAPool,
	}
	srv.StartTLS()
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "https://127.0.0.1:") {
		t.Fatalf("test server not on loopback: %s", srv.URL)
	}

	path := filepath.Join(t.TempDir(), "etc", "portal", "kubeconfig")
	if err := WriteKubeconfig(path, srv.URL, b); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %v, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(filepath.Dir(path)); di.Mode().Perm() != 0o700 {
		t.Errorf("kubeconfig dir mode %v, want 0700", di.Mode().Perm())
	}

	raw, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if raw.CurrentContext != "portal" || raw.Contexts["portal"].Cluster != "portal" || raw.Contexts["portal"].AuthInfo != "portal" {
		t.Errorf("kubeconfig names: current %q, contexts %v", raw.CurrentContext, raw.Contexts)
	}
	if raw.Clusters["portal"].Server != srv.URL {
		t.Errorf("server = %q, want %q", raw.Clusters["portal"].Server, srv.URL)
	}

	restCfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	client, err := rest.HTTPClientFor(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(srv.URL + "/whoami")
	if err != nil {
		t.Fatalf("request with kubeconfig credentials failed: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if got, want := string(body), "portal-admin/system:masters"; got != want {
		t.Errorf("server saw client %q, want %q", got, want)
	}

	// Rewriting replaces the file in place (e.g. after the admin cert was
	// renewed) and keeps it private.
	if err := WriteKubeconfig(path, "https://127.0.0.1:6443", b); err != nil {
		t.Fatal(err)
	}
	again, err := clientcmd.LoadFromFile(path)
	if err != nil || again.Clusters["portal"].Server != "https://127.0.0.1:6443" {
		t.Errorf("rewritten kubeconfig: %v %v", again, err)
	}
}

func TestWriteKubeconfigRejectsIncompleteInput(t *testing.T) {
	b := ensure(t, Config{Dir: t.TempDir()})
	path := filepath.Join(t.TempDir(), "kubeconfig")
	tests := []struct {
		name    string
		server  string
		bundle  *Bundle
		wantErr string
	}{
		{"nil bundle", "https://127.0.0.1:6443", nil, "pki: kubeconfig needs a bundle with CA and admin credentials"},
		{"empty bundle", "https://127.0.0.1:6443", &Bundle{}, "pki: kubeconfig needs a bundle with CA and admin credentials"},
		{"no server", "", b, "pki: kubeconfig needs a server URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := WriteKubeconfig(path, tt.server, tt.bundle)
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("error = %v, want %q", err, tt.wantErr)
			}
			if _, statErr := os.Stat(path); statErr == nil {
				t.Error("file written despite the error")
			}
		})
	}
}
