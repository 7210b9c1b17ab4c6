package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/portal-net/portal/internal/podruntime"
)

// serveLogs streams a container's log. The status line waits for the first
// byte (or the end) so that a runtime error before any output still
// reaches the caller as an error status.
func (s *Server) serveLogs(w http.ResponseWriter, r *http.Request) {
	t, ok := s.resolve(w, r)
	if !ok {
		return
	}
	opts, err := parseLogOptions(r.URL.Query(), time.Now())
	if err != nil {
		writeStatus(w, badRequest(err.Error()))
		return
	}
	fw := &flushWriter{w: w}
	if f, ok := w.(http.Flusher); ok {
		fw.flusher = f
	}
	err = s.cfg.Runtime.Logs(r.Context(), t.uid, t.container, opts, fw)
	if fw.started() {
		if err != nil && r.Context().Err() == nil {
			klog.FromContext(r.Context()).Error(err, "Log stream ended", "pod", t.namespace+"/"+t.pod, "container", t.container)
		}
		return
	}
	if err != nil {
		writeStatus(w, runtimeError(t, err))
		return
	}
	fw.start()
}

// parseLogOptions reads the kubelet's containerLogs query parameters.
func parseLogOptions(q url.Values, now time.Time) (podruntime.LogOptions, error) {
	opts := podruntime.LogOptions{TailLines: -1}
	var err error
	boolParam := func(name string) bool {
		v := q.Get(name)
		if v == "" || err != nil {
			return false
		}
		b, perr := strconv.ParseBool(v)
		if perr != nil {
			err = fmt.Errorf("invalid %s %q: %w", name, v, perr)
		}
		return b
	}
	intParam := func(name string, def int64) int64 {
		v := q.Get(name)
		if v == "" || err != nil {
			return def
		}
		n, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil || n < 0 {
			err = fmt.Errorf("invalid %s %q: must be a non-negative integer", name, v)
		}
		return n
	}
	opts.Follow = boolParam("follow")
	opts.Previous = boolParam("previous")
	opts.Timestamps = boolParam("timestamps")
	opts.TailLines = intParam("tailLines", -1)
	opts.LimitBytes = intParam("limitBytes", 0)
	if secs := intParam("sinceSeconds", 0); secs > 0 {
		opts.SinceTime = now.Add(-time.Duration(secs) * time.Second)
	}
	if v := q.Get("sinceTime"); v != "" && err == nil {
		ts, perr := time.Parse(time.RFC3339, v)
		if perr != nil {
			return opts, fmt.Errorf("invalid sinceTime %q: %w", v, perr)
		}
		opts.SinceTime = ts
	}
	return opts, err
}

// flushWriter sends every write to the client at once, so `logs -f`
// follows without buffering delay.
type flushWriter struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	flusher http.Flusher
	began   bool
}

func (f *flushWriter) start() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.startLocked()
}

func (f *flushWriter) startLocked() {
	if f.began {
		return
	}
	f.began = true
	f.w.Header().Set("Content-Type", "text/plain")
	f.w.WriteHeader(http.StatusOK)
}

func (f *flushWriter) started() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.began
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.startLocked()
	n, err := f.w.Write(p)
	if f.flusher != nil {
		f.flusher.Flush()
	}
	return n, err
}
