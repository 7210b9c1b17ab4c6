package netutil

import (
	"net"
	"net/http"
	"net/http/pprof"
)

// WithProfiles adds Go's /debug/pprof/ handlers to h when address (host:port)
// is a loopback one, where nobody but the node's own users can reach them;
// otherwise h is returned unchanged.
func WithProfiles(address string, h http.Handler) http.Handler {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return h
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return h
	}
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
