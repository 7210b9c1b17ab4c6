package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/portal-net/portal/internal/podruntime"
)

// APIServerClientName is the user the API server presents when it proxies
// logs and exec to an agent (upstream's kubelet client name).
const APIServerClientName = "kube-apiserver-kubelet-client"

// Config is what the agent's API needs.
type Config struct {
	Runtime podruntime.Runtime
	// Lookup resolves a pod this node runs to its UID.
	Lookup func(namespace, pod string) (uid types.UID, ok bool)
	// ClientCA verifies client certificates; every request but /healthz
	// must present one that chains to it.
	ClientCA *x509.CertPool
	// Authorize decides whether an authenticated user may use the API;
	// DefaultAuthorize when nil.
	Authorize func(user string, groups []string) bool
	// TLSCert is the serving certificate (see SelfSignedCert).
	TLSCert tls.Certificate
}

// DefaultAuthorize admits cluster admins and the API server's client.
func DefaultAuthorize(user string, groups []string) bool {
	return user == APIServerClientName || slices.Contains(groups, "system:masters")
}

// Server serves the agent API.
type Server struct {
	cfg Config
	mux *http.ServeMux
}

// New returns a server for cfg.
func New(cfg Config) *Server {
	if cfg.Authorize == nil {
		cfg.Authorize = DefaultAuthorize
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok"))
	})
	s.mux.Handle("GET /containerLogs/{namespace}/{pod}/{container}", s.authenticated(s.serveLogs))
	for _, m := range []string{"GET", "POST"} {
		s.mux.Handle(m+" /exec/{namespace}/{pod}/{container}", s.authenticated(s.serveExec))
		s.mux.Handle(m+" /attach/{namespace}/{pod}/{container}", s.authenticated(s.serveAttach))
	}
	return s
}

// Handler is the server's HTTP handler; it expects r.TLS to be set by a
// listener configured like TLSConfig.
func (s *Server) Handler() http.Handler { return s.mux }

// TLSConfig is the server's TLS configuration. Client certificates are
// verified when given and demanded per endpoint, so /healthz stays open.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{s.cfg.TLSCert},
		ClientCAs:    s.cfg.ClientCA,
		ClientAuth:   tls.VerifyClientCertIfGiven,
		MinVersion:   tls.VersionTLS12,
		// Exec and attach upgrade the connection, which HTTP/2 cannot do.
		NextProtos: []string{"http/1.1"},
	}
}

// Serve serves HTTPS on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.mux,
		TLSConfig:         s.TLSConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			// Streams (follow, exec) end with ctx through BaseContext;
			// Close also drops hijacked connections' listener.
			_ = hs.Close()
		case <-done:
		}
	}()
	err := hs.Serve(tls.NewListener(ln, hs.TLSConfig))
	if ctx.Err() != nil && errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// authenticated requires a verified client certificate and an authorized
// subject before calling next.
func (s *Server) authenticated(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			writeStatus(w, &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusUnauthorized,
				Reason: metav1.StatusReasonUnauthorized, Message: "a client certificate signed by the cluster CA is required"})
			return
		}
		subject := r.TLS.VerifiedChains[0][0].Subject
		if !s.cfg.Authorize(subject.CommonName, subject.Organization) {
			writeStatus(w, &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusForbidden,
				Reason:  metav1.StatusReasonForbidden,
				Message: fmt.Sprintf("user %q (groups %q) may not use the node agent API", subject.CommonName, subject.Organization)})
			return
		}
		klog.FromContext(r.Context()).V(4).Info("Agent API request", "user", subject.CommonName, "method", r.Method, "path", r.URL.Path)
		next(w, r)
	})
}

// target is the pod and container named by a request path.
type target struct {
	namespace, pod, container string
	uid                       types.UID
}

// resolve finds the pod the path names, answering 404 itself when this
// node does not run it.
func (s *Server) resolve(w http.ResponseWriter, r *http.Request) (target, bool) {
	t := target{namespace: r.PathValue("namespace"), pod: r.PathValue("pod"), container: r.PathValue("container")}
	uid, ok := s.cfg.Lookup(t.namespace, t.pod)
	if !ok {
		writeStatus(w, notFound(fmt.Sprintf("pod %s/%s is not running on this node", t.namespace, t.pod)))
		return t, false
	}
	t.uid = uid
	return t, true
}

func notFound(msg string) *metav1.Status {
	return &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound, Message: msg}
}

func badRequest(msg string) *metav1.Status {
	return &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusBadRequest, Reason: metav1.StatusReasonBadRequest, Message: msg}
}

// runtimeError turns a runtime error into the status the caller sees.
func runtimeError(t target, err error) *metav1.Status {
	if errors.Is(err, podruntime.ErrNotFound) {
		return notFound(fmt.Sprintf("container %q in pod %s/%s: %v", t.container, t.namespace, t.pod, err))
	}
	return &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusInternalServerError,
		Reason: metav1.StatusReasonInternalError, Message: err.Error()}
}

// writeStatus answers with a metav1.Status, which the API server passes
// on to its client as the error.
func writeStatus(w http.ResponseWriter, st *metav1.Status) {
	st.Kind, st.APIVersion = "Status", "v1"
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(int(st.Code))
	_ = json.NewEncoder(w).Encode(st)
}
