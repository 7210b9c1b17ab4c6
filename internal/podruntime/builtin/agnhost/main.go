package agnhost

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Main runs an agnhost subcommand (args excludes the program name, so
// args[0] is the subcommand) and returns the process exit code. SIGTERM
// and SIGINT end the subcommand; it then returns 0.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return run(ctx, args, osEnv())
}

// env is everything a subcommand takes from its process, so tests can run
// the servers in-process on loopback ports with a fixed hostname and clock.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	environ        func() []string
	hostname       func() (string, error)
	now            func() time.Time
	listen         func(network, addr string) (net.Listener, error)
	listenPacket   func(network, addr string) (net.PacketConn, error)
	// root is the container's file system root ("/").
	root string
}

func osEnv() env {
	return env{
		stdout:       os.Stdout,
		stderr:       os.Stderr,
		getenv:       os.Getenv,
		environ:      os.Environ,
		hostname:     os.Hostname,
		now:          time.Now,
		listen:       net.Listen,
		listenPacket: net.ListenPacket,
		root:         "/",
	}
}

type subcommand struct {
	short string
	run   func(ctx context.Context, e env, args []string) int
}

var subcommands = map[string]subcommand{
	"netexec":         {"HTTP, UDP servers with test endpoints (/echo, /dial, /hostname, ...)", netexec},
	"serve-hostname":  {"answers every request with the hostname (HTTP, TCP or UDP)", serveHostname},
	"pause":           {"waits until SIGTERM or SIGINT", pause},
	"liveness":        {"HTTP :8080 /healthz: 200 for 10 seconds, then 500", liveness},
	"porter":          {"serves $SERVE_PORT_<port> on each <port>", porter},
	"test-webserver":  {"serves the container's files over HTTP (--port, default 80)", testWebserver},
	"dns-suffix":      {"prints the DNS search list of /etc/resolv.conf, comma separated", dnsSuffix},
	"dns-server-list": {"prints the name servers of /etc/resolv.conf, comma separated", dnsServerList},
}

// run is Main with the context that ends on SIGTERM and the process env.
func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		usage(e.stderr)
		return 1
	}
	switch args[0] {
	case "-h", "--help", "help":
		usage(e.stdout)
		return 0
	}
	sc, ok := subcommands[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "Error: unknown command %q for \"agnhost\"\n", args[0])
		usage(e.stderr)
		return 1
	}
	return sc.run(ctx, e, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage:\n  agnhost [command]\n\nAvailable Commands:")
	names := make([]string, 0, len(subcommands))
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-15s %s\n", n, subcommands[n].short)
	}
}

// hostname never fails from the caller's view: agnhost answers something.
func (e env) host() string {
	h, err := e.hostname()
	if err != nil {
		return "unknown"
	}
	return h
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func trimLower(b []byte) string { return strings.ToLower(strings.TrimSpace(string(b))) }
