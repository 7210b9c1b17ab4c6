package agnhost

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// testWebserver serves the container's whole file system, read-only, on
// --port: the upstream specs read what their pods wrote through
// pods/proxy, and break a readiness probe by moving the file it fetches.
func testWebserver(ctx context.Context, e env, args []string) int {
	fs := flag.NewFlagSet("test-webserver", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	port := fs.Int("port", 80, "port to serve on")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	ln, err := e.listen("tcp", ":"+strconv.Itoa(*port))
	if err != nil {
		fmt.Fprintf(e.stderr, "test-webserver: %v\n", err)
		return 1
	}
	fmt.Fprintf(e.stdout, "Serving %s on port %d\n", e.root, *port)
	return serveUntil(ctx, e, []net.Listener{ln}, http.FileServer(http.Dir(e.root)))
}

// dnsSuffix prints the resolver's search list.
func dnsSuffix(_ context.Context, e env, args []string) int {
	return printResolvConf(e, args, "dns-suffix", "search")
}

// dnsServerList prints the resolver's name servers.
func dnsServerList(_ context.Context, e env, args []string) int {
	return printResolvConf(e, args, "dns-server-list", "nameserver")
}

// printResolvConf prints the values of every keyword line of
// /etc/resolv.conf (the last "search" line wins, as for the resolver),
// joined by commas.
func printResolvConf(e env, args []string, name, keyword string) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	b, err := os.ReadFile(filepath.Join(e.root, "etc", "resolv.conf"))
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", name, err)
		return 1
	}
	var values []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != keyword {
			continue
		}
		if keyword == "search" {
			values = f[1:]
		} else {
			values = append(values, f[1:]...)
		}
	}
	fmt.Fprintln(e.stdout, strings.Join(values, ","))
	return 0
}
