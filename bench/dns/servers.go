package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/portal-net/portal/internal/testutil/portalproc"
)

// dnsServer is one DNS server under test, a child process on loopback.
type dnsServer struct {
	name string
	proc portalproc.Process
	addr string // where it answers, 127.0.0.1:port
	args []string
}

// keepLog writes a server's log to dir (if set).
func keepLog(dir string, s *dnsServer) {
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "bench: logs: %v\n", err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, s.name+".log"), []byte(s.proc.Log.String()), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "bench: logs: %v\n", err)
	}
}
