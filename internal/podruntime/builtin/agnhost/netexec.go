package agnhost

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// netexecConfig is the netexec command line.
type netexecConfig struct {
	httpPort, udpPort, sctpPort int
	httpOverride                string
	certFile, keyFile           string
	udpListenAddresses          string
	delayShutdown               int
	// enableShell turns /shell on. Upstream always runs it; here a pod
	// must opt in (--enable-shell or AGNHOST_ENABLE_SHELL=1) because the
	// "container" is a host process and the shell would be the host's.
	enableShell bool
}

type exitRequest struct {
	code    int
	timeout time.Duration
}

type netexecServer struct {
	cfg    netexecConfig
	env    env
	log    *log.Logger
	exit   chan exitRequest
	ready  atomic.Bool // healthz: listeners are up
	ending atomic.Bool // readyz: SIGTERM received, delaying shutdown
}

func netexec(ctx context.Context, e env, args []string) int {
	var cfg netexecConfig
	fs := flag.NewFlagSet("netexec", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.IntVar(&cfg.httpPort, "http-port", 8080, "HTTP Listen Port")
	fs.IntVar(&cfg.udpPort, "udp-port", 8081, "UDP Listen Port (-1: no UDP server)")
	fs.IntVar(&cfg.sctpPort, "sctp-port", -1, "SCTP Listen Port (not supported here: logged and ignored)")
	fs.StringVar(&cfg.httpOverride, "http-override", "", "Override the HTTP handler to always respond as if it were a GET with this path & params")
	fs.StringVar(&cfg.certFile, "tls-cert-file", "", "File containing an x509 certificate for HTTPS")
	fs.StringVar(&cfg.keyFile, "tls-private-key-file", "", "File containing an x509 private key matching --tls-cert-file")
	fs.StringVar(&cfg.udpListenAddresses, "udp-listen-addresses", "", "A comma separated list of ip addresses the udp servers listen from")
	fs.IntVar(&cfg.delayShutdown, "delay-shutdown", 0, "Number of seconds to delay shutdown when receiving SIGTERM")
	fs.BoolVar(&cfg.enableShell, "enable-shell", e.getenv("AGNHOST_ENABLE_SHELL") == "1", "Enable /shell (also AGNHOST_ENABLE_SHELL=1)")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "Error: netexec takes no arguments, got %q\n", fs.Args())
		return 1
	}
	s := &netexecServer{cfg: cfg, env: e, log: log.New(e.stdout, "", log.LstdFlags), exit: make(chan exitRequest, 1)}
	if cfg.sctpPort != -1 {
		// Upstream's SCTP server answers like the UDP one; without SCTP
		// here the pod still runs its HTTP and UDP servers.
		s.log.Printf("SCTP is not supported by this node's agnhost: not listening on SCTP port %d", cfg.sctpPort)
	}
	return s.run(ctx)
}

func (s *netexecServer) run(ctx context.Context) int {
	ln, err := s.env.listen("tcp", fmt.Sprintf(":%d", s.cfg.httpPort))
	if err != nil {
		fmt.Fprintf(s.env.stderr, "Error: netexec: %v\n", err)
		return 1
	}
	var udps []net.PacketConn
	if s.cfg.udpPort != -1 {
		addrs := []string{""}
		if s.cfg.udpListenAddresses != "" {
			addrs = strings.Split(s.cfg.udpListenAddresses, ",")
		}
		for _, a := range addrs {
			if a != "" && net.ParseIP(a) == nil {
				err = fmt.Errorf("parseAddress: invalid address %s", a)
			} else {
				var pc net.PacketConn
				pc, err = s.env.listenPacket("udp", net.JoinHostPort(a, strconv.Itoa(s.cfg.udpPort)))
				if err == nil {
					udps = append(udps, pc)
				}
			}
			if err != nil {
				ln.Close()
				for _, pc := range udps {
					pc.Close()
				}
				fmt.Fprintf(s.env.stderr, "Error: netexec: %v\n", err)
				return 1
			}
		}
	}

	srv := &http.Server{Handler: s.handler(), ErrorLog: s.log, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var err error
		if s.cfg.certFile != "" {
			err = srv.ServeTLS(ln, s.cfg.certFile, s.cfg.keyFile)
		} else {
			err = srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
		}
	}()
	s.log.Printf("Started HTTP server on port %d", s.cfg.httpPort)
	for _, pc := range udps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveUDP(pc)
		}()
		s.log.Printf("Started UDP server on port %s", pc.LocalAddr())
	}
	s.ready.Store(true)

	var req exitRequest
	select {
	case <-ctx.Done():
		s.ending.Store(true)
		if s.cfg.delayShutdown > 0 {
			s.log.Printf("Sleeping %d seconds before terminating...", s.cfg.delayShutdown)
			time.Sleep(time.Duration(s.cfg.delayShutdown) * time.Second)
		}
		req = exitRequest{code: 0, timeout: 5 * time.Second}
	case req = <-s.exit:
	case err := <-serveErr:
		s.log.Printf("HTTP server failed: %v", err)
		req = exitRequest{code: 1}
	}
	s.ready.Store(false)
	for _, pc := range udps {
		pc.Close()
	}
	shutdown(srv, req.timeout)
	s.log.Printf("Graceful shutdown completed, exiting with %d", req.code)
	wg.Wait()
	return req.code
}

func (s *netexecServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", s.root)
	mux.HandleFunc("/clientip", s.clientIP)
	mux.HandleFunc("/dial", s.dial)
	mux.HandleFunc("/echo", s.echo)
	mux.HandleFunc("/exit", s.exitHandler)
	mux.HandleFunc("/healthz", s.healthz)
	mux.HandleFunc("/readyz", s.readyz)
	mux.HandleFunc("/hostname", s.hostname)
	mux.HandleFunc("/hostName", s.hostname)
	mux.HandleFunc("/redirect", s.redirect)
	mux.HandleFunc("/shell", s.shell)
	mux.HandleFunc("/shutdown", func(w http.ResponseWriter, r *http.Request) {
		s.log.Printf("GET /shutdown")
		s.requestExit(exitRequest{code: 0})
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		s.log.Printf("GET /upload")
		writeJSON(w, http.StatusNotImplemented, map[string]string{"error": "upload is not supported by this node's agnhost"})
	})
	if s.cfg.httpOverride == "" {
		return mux
	}
	override, err := url.Parse(s.cfg.httpOverride)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err != nil {
			http.Error(w, fmt.Sprintf("override request failed: %v", err), http.StatusInternalServerError)
			return
		}
		r2 := r.Clone(r.Context())
		r2.Method = http.MethodGet
		r2.URL = override
		r2.RequestURI = override.RequestURI()
		r2.Form, r2.PostForm, r2.Body = nil, nil, http.NoBody
		mux.ServeHTTP(w, r2)
	})
}

func (s *netexecServer) requestExit(req exitRequest) {
	select {
	case s.exit <- req:
	default: // an exit is already under way
	}
}

func (s *netexecServer) root(w http.ResponseWriter, r *http.Request) {
	s.log.Printf("GET /")
	fmt.Fprintf(w, "NOW: %v", s.env.now())
}

func (s *netexecServer) echo(w http.ResponseWriter, r *http.Request) {
	msg, codeStr := r.FormValue("msg"), r.FormValue("code")
	s.log.Printf("GET /echo?msg=%s&code=%s", msg, codeStr)
	if codeStr != "" {
		code, err := strconv.Atoi(codeStr)
		if err != nil || code < 100 || code > 999 {
			fmt.Fprintf(w, "argument 'code' must be an integer or empty, got %q\n", codeStr)
			return
		}
		w.WriteHeader(code)
	}
	fmt.Fprint(w, msg)
}

func (s *netexecServer) clientIP(w http.ResponseWriter, r *http.Request) {
	s.log.Printf("GET /clientip")
	fmt.Fprint(w, r.RemoteAddr)
}

func (s *netexecServer) hostname(w http.ResponseWriter, r *http.Request) {
	s.log.Printf("GET %s", r.URL.Path)
	fmt.Fprint(w, s.env.host())
}

func (s *netexecServer) healthz(w http.ResponseWriter, r *http.Request) {
	s.log.Printf("GET /healthz")
	if !s.ready.Load() {
		w.WriteHeader(http.StatusPreconditionFailed)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *netexecServer) readyz(w http.ResponseWriter, r *http.Request) {
	s.log.Printf("GET /readyz")
	if s.ending.Load() || !s.ready.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *netexecServer) exitHandler(w http.ResponseWriter, r *http.Request) {
	codeStr, timeoutStr, waitStr := r.FormValue("code"), r.FormValue("timeout"), r.FormValue("wait")
	s.log.Printf("GET /exit?code=%s&timeout=%s&wait=%s", codeStr, timeoutStr, waitStr)
	var req exitRequest
	var wait time.Duration
	var err error
	if timeoutStr != "" {
		if req.timeout, err = time.ParseDuration(timeoutStr); err != nil {
			fmt.Fprintf(w, "argument 'timeout' must be a valid golang duration or empty, got %q\n", timeoutStr)
			return
		}
	}
	if waitStr != "" {
		if wait, err = time.ParseDuration(waitStr); err != nil {
			fmt.Fprintf(w, "argument 'wait' must be a valid golang duration or empty, got %q\n", waitStr)
			return
		}
	}
	if codeStr != "" {
		if req.code, err = strconv.Atoi(codeStr); err != nil || req.code < 0 || req.code > 127 {
			fmt.Fprintf(w, "argument 'code' must be an integer [0-127] or empty, got %q\n", codeStr)
			return
		}
	}
	s.log.Printf("Will begin shutdown in %s, allowing %s for connections to close, then will exit with %d", wait, req.timeout, req.code)
	sleepCtx(r.Context(), wait)
	s.requestExit(req)
}

func (s *netexecServer) redirect(w http.ResponseWriter, r *http.Request) {
	location, codeStr := r.FormValue("location"), r.FormValue("code")
	s.log.Printf("%s /redirect?msg=%s&code=%s", r.Method, location, codeStr)
	code := http.StatusFound
	if codeStr != "" {
		var err error
		if code, err = strconv.Atoi(codeStr); err != nil || code < 300 || code > 399 {
			fmt.Fprintf(w, "argument 'code' must be an integer or empty, got %q\n", codeStr)
			return
		}
	}
	http.Redirect(w, r, location, code)
}

func (s *netexecServer) shell(w http.ResponseWriter, r *http.Request) {
	cmd := r.FormValue("shellCommand")
	if cmd == "" {
		cmd = r.FormValue("cmd")
	}
	s.log.Printf("GET /shell?cmd=%s", cmd)
	if !s.cfg.enableShell {
		http.Error(w, "/shell is disabled: this agnhost runs as a host process; start netexec with --enable-shell or AGNHOST_ENABLE_SHELL=1 to allow it", http.StatusForbidden)
		return
	}
	out, err := exec.CommandContext(r.Context(), "/bin/sh", "-c", cmd).CombinedOutput()
	res := map[string]string{}
	if len(out) > 0 {
		res["output"] = string(out)
	}
	if err != nil {
		res["error"] = err.Error()
	}
	s.log.Printf("Output: %s", res)
	writeJSON(w, http.StatusOK, res)
}

// dial makes tries requests to host:port and reports every response and
// error, so a test can check connectivity from inside this pod.
func (s *netexecServer) dial(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	host, port, request, protocol, triesStr := q.Get("host"), q.Get("port"), q.Get("request"), q.Get("protocol"), q.Get("tries")
	s.log.Printf("GET /dial?host=%s&protocol=%s&port=%s&request=%s&tries=%s", host, protocol, port, request, triesStr)
	tries := 1
	if triesStr != "" {
		var err error
		if tries, err = strconv.Atoi(triesStr); err != nil || tries < 0 || tries > 1000 {
			http.Error(w, fmt.Sprintf("tries parameter is invalid. %q", triesStr), http.StatusBadRequest)
			return
		}
	}
	if request == "" {
		http.Error(w, "request parameter not specified.", http.StatusBadRequest)
		return
	}
	hostPort := net.JoinHostPort(host, port)
	var dial func(ctx context.Context) (string, error)
	switch strings.ToLower(protocol) {
	case "", "http":
		if _, err := net.ResolveTCPAddr("tcp", hostPort); err != nil {
			http.Error(w, fmt.Sprintf("host and/or port param are invalid. %v", err), http.StatusBadRequest)
			return
		}
		dial = func(ctx context.Context) (string, error) { return dialHTTP(ctx, hostPort, request) }
	case "udp":
		if _, err := net.ResolveUDPAddr("udp", hostPort); err != nil {
			http.Error(w, fmt.Sprintf("host and/or port param are invalid. %v", err), http.StatusBadRequest)
			return
		}
		dial = func(ctx context.Context) (string, error) { return dialUDP(ctx, hostPort, request) }
	default:
		http.Error(w, fmt.Sprintf("unsupported protocol. %s", protocol), http.StatusBadRequest)
		return
	}
	var responses, errs []string
	for i := 0; i < tries; i++ {
		resp, err := dial(r.Context())
		if err != nil {
			errs = append(errs, err.Error())
		} else {
			responses = append(responses, resp)
		}
	}
	out := map[string][]string{}
	if len(responses) > 0 {
		out["responses"] = responses
	}
	if len(errs) > 0 {
		out["errors"] = errs
	}
	writeJSON(w, http.StatusOK, out)
}

func dialHTTP(ctx context.Context, hostPort, request string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+hostPort+"/"+strings.TrimPrefix(request, "/"), nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	return string(body), nil
}

func dialUDP(ctx context.Context, hostPort, request string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", hostPort)
	if err != nil {
		return "", fmt.Errorf("udp dial failed. err:%v", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(request)); err != nil {
		return "", fmt.Errorf("udp connection write failed. err:%v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetReadDeadline(deadline)
	buf := make([]byte, 2048)
	n, err := conn.Read(buf)
	if err != nil || n == 0 {
		return "", fmt.Errorf("reading from udp connection failed. err:'%v'", err)
	}
	return string(buf[:n]), nil
}

// serveUDP answers "hostname", "echo <text>" and "clientip" datagrams
// until pc is closed.
func (s *netexecServer) serveUDP(pc net.PacketConn) {
	buf := make([]byte, 2048)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Printf("UDP server exited: %v", err)
			}
			return
		}
		text := trimLower(buf[:n])
		var reply string
		switch {
		case text == "hostname":
			s.log.Println("Sending udp hostName response")
			reply = s.env.host()
		case strings.HasPrefix(text, "echo "):
			reply = strings.TrimPrefix(text, "echo ")
			s.log.Printf("Echoing %v to UDP client %s", reply, from)
		case text == "clientip":
			s.log.Printf("Sending clientip back to UDP client %s", from)
			reply = from.String()
		default:
			if text != "" {
				s.log.Printf("Unknown UDP command received from %s: %v", from, text)
			}
			continue
		}
		if _, err := pc.WriteTo([]byte(reply), from); err != nil {
			s.log.Printf("failed to write to UDP client %s: %v", from, err)
		}
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, fmt.Sprintf("response could not be serialized. %v", err), http.StatusExpectationFailed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
}
