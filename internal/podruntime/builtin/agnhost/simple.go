package agnhost

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portal-net/portal/internal/podruntime/builtin/localcert"
)

// pause blocks until SIGTERM/SIGINT. Upstream exits 1 or 2 depending on
// the signal; a stopped pause container here reports success instead.
func pause(ctx context.Context, e env, args []string) int {
	fs := flag.NewFlagSet("pause", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	delay := fs.Int("delay-shutdown", 0, "Number of seconds to delay shutdown when receiving SIGTERM/SIGINT.")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	fmt.Fprintln(e.stdout, "Paused")
	<-ctx.Done()
	if *delay > 0 {
		fmt.Fprintf(e.stdout, "Sleeping %d seconds before exit ...\n", *delay)
		time.Sleep(time.Duration(*delay) * time.Second)
	}
	fmt.Fprintln(e.stdout, "exiting")
	return 0
}

// liveness serves /healthz on :8080: healthy for the first 10 seconds,
// then failing, so a liveness probe restarts the container.
func liveness(ctx context.Context, e env, args []string) int {
	fs := flag.NewFlagSet("liveness", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	started := e.now()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if d := e.now().Sub(started); d > 10*time.Second {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, "error: %v", d.Seconds())
			return
		}
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		loc := r.URL.Query().Get("loc")
		if loc == "" {
			loc = "/healthz"
		}
		http.Redirect(w, r, loc, http.StatusFound)
	})
	ln, err := e.listen("tcp", ":8080")
	if err != nil {
		fmt.Fprintf(e.stderr, "liveness: %v\n", err)
		return 1
	}
	return serveUntil(ctx, e, []net.Listener{ln}, mux)
}

// porter serves, for every SERVE_PORT_<port>=<text> in the environment,
// <text> over HTTP on <port>.
func porter(ctx context.Context, e env, args []string) int {
	fs := flag.NewFlagSet("porter", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	jsonResponse := fs.Bool("json-response", false, `answer {"Method": <request method>, "Body": <text>} as JSON`)
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	// SERVE_TCP_PORT_<port> is the same as SERVE_PORT_<port>;
	// SERVE_TLS_PORT_<port> serves HTTPS with a self-signed certificate
	// for 127.0.0.1 and ::1 (the real image bundles one); the UDP and
	// SCTP variants of the real image are not built in.
	var ports []int
	texts := map[int]string{}
	overTLS := map[int]bool{}
	for _, kv := range e.environ() {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		num, found := strings.CutPrefix(k, "SERVE_PORT_")
		if !found {
			num, found = strings.CutPrefix(k, "SERVE_TCP_PORT_")
		}
		isTLS := false
		if !found {
			num, found = strings.CutPrefix(k, "SERVE_TLS_PORT_")
			isTLS = found
		}
		if !found {
			continue
		}
		p, err := strconv.Atoi(num)
		if err != nil || p <= 0 || p > 65535 {
			fmt.Fprintf(e.stderr, "porter: invalid port in %s\n", k)
			return 1
		}
		ports = append(ports, p)
		texts[p] = v
		overTLS[p] = isTLS
	}
	if len(ports) == 0 {
		fmt.Fprintln(e.stderr, "porter: no SERVE_PORT_<port> variables set")
		return 1
	}
	sort.Ints(ports)
	logger := log.New(e.stdout, "", log.LstdFlags)
	var lns []net.Listener
	mux := http.NewServeMux()
	byAddr := map[string]string{}
	var tlsConfig *tls.Config
	for _, p := range ports {
		ln, err := e.listen("tcp", fmt.Sprintf(":%d", p))
		if err == nil && overTLS[p] {
			if tlsConfig == nil {
				tlsConfig, err = localhostTLS()
			}
			if err == nil {
				ln = tls.NewListener(ln, tlsConfig)
			}
		}
		if err != nil {
			closeAll(lns)
			fmt.Fprintf(e.stderr, "porter: %v\n", err)
			return 1
		}
		byAddr[ln.Addr().String()] = texts[p]
		lns = append(lns, ln)
		logger.Printf("Serving on port %d", p)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if local == nil {
			http.NotFound(w, r)
			return
		}
		text := byAddrLookup(byAddr, local)
		if *jsonResponse {
			b, _ := json.Marshal(struct{ Method, Body string }{r.Method, text})
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(b)
			return
		}
		fmt.Fprint(w, text)
	})
	return serveUntil(ctx, e, lns, mux)
}

// byAddrLookup finds the text of the listener a connection arrived on;
// listeners on the wildcard address see local addresses of the actual IP.
func byAddrLookup(byAddr map[string]string, local net.Addr) string {
	if t, ok := byAddr[local.String()]; ok {
		return t
	}
	_, port, _ := net.SplitHostPort(local.String())
	for a, t := range byAddr {
		if _, p, _ := net.SplitHostPort(a); p == port {
			return t
		}
	}
	return ""
}

// serveUntil serves h on lns until ctx ends, then shuts down gracefully.
func serveUntil(ctx context.Context, e env, lns []net.Listener, h http.Handler) int {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, len(lns))
	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	code := 0
	select {
	case <-ctx.Done():
	case err := <-errc:
		fmt.Fprintf(e.stderr, "serve: %v\n", err)
		code = 1
	}
	shutdown(srv, 5*time.Second)
	wg.Wait()
	return code
}

func shutdown(srv *http.Server, timeout time.Duration) {
	if timeout <= 0 {
		srv.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if srv.Shutdown(ctx) != nil {
		srv.Close()
	}
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

// flagExit: -h is success, any other flag error a usage error.
func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 1
}

// localhostTLS serves the image's /localhost.crt and /localhost.key, as
// the agnhost image does; without them (a runtime that gives no image
// files) a fresh certificate for localhost.
func localhostTLS() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair("/localhost.crt", "/localhost.key")
	if err != nil {
		c, k, gerr := localcert.PEM()
		if gerr != nil {
			return nil, gerr
		}
		if cert, err = tls.X509KeyPair(c, k); err != nil {
			return nil, err
		}
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
