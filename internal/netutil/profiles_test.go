package netutil

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWithProfilesOnlyOnLoopback(t *testing.T) {
	base := http.NewServeMux()
	base.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	for _, tt := range []struct {
		address string
		pprof   int
	}{
		{"127.0.0.1:9153", http.StatusOK},
		{"[::1]:9153", http.StatusOK},
		{"0.0.0.0:9153", http.StatusNotFound},
		{"10.244.0.1:9153", http.StatusNotFound},
		{":9153", http.StatusNotFound},
	} {
		h := WithProfiles(tt.address, base)
		for path, want := range map[string]int{"/metrics": http.StatusOK, "/debug/pprof/": tt.pprof} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if rec.Code != want {
				t.Errorf("%s %s: %d, want %d", tt.address, path, rec.Code, want)
			}
		}
	}
}
