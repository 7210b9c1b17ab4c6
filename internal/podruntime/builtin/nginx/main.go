package nginx

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultRoot is the document root of the nginx image; a volume mounted
// there replaces the built-in welcome page.
const DefaultRoot = "/usr/share/nginx/html"

const version = "nginx/1.27.0"

// Main runs the static HTTP server and returns the process exit code.
// SIGTERM, SIGQUIT and SIGINT stop it gracefully (exit 0).
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGINT)
	defer stop()
	return run(ctx, args, os.Stdout, os.Stderr, nil)
}

// config is the command line: our --listen and --root, plus nginx's own
// options, accepted so that "nginx -g 'daemon off;'" commands work.
type config struct {
	listen string
	root   string
	// exit is set for -v/-V/-t, which print and exit.
	exit bool
}

func parseArgs(args []string, stdout io.Writer) (config, error) {
	cfg := config{listen: ":80", root: DefaultRoot}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		takeValue := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("option %q requires a parameter", name)
			}
			i++
			return args[i], nil
		}
		var err error
		switch name {
		case "--listen", "-listen":
			cfg.listen, err = takeValue()
		case "--root", "-root":
			cfg.root, err = takeValue()
		case "-g", "-c", "-p", "-e":
			// nginx configuration: the built-in server has none to apply.
			_, err = takeValue()
		case "-q":
		case "-v", "-V":
			fmt.Fprintf(stdout, "nginx version: %s (portal built-in)\n", version)
			cfg.exit = true
		case "-t", "-T":
			fmt.Fprintln(stdout, "nginx: configuration file /etc/nginx/nginx.conf test is successful")
			cfg.exit = true
		default:
			err = fmt.Errorf("invalid option: %q", a)
		}
		if err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// run serves until ctx ends; listening, when set, learns the bound address.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, listening func(net.Addr)) int {
	cfg, err := parseArgs(args, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "nginx: %v\n", err)
		return 1
	}
	if cfg.exit {
		return 0
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		fmt.Fprintf(stderr, "nginx: [emerg] bind() to %s failed (%v)\n", cfg.listen, err)
		return 1
	}
	if listening != nil {
		listening(ln.Addr())
	}
	h := &handler{content: contentFor(cfg.root), log: &accessLog{w: stdout, now: time.Now}}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 60 * time.Second}
	fmt.Fprintf(stderr, "%s [notice] 1#1: %s (portal built-in) listening on %s\n", time.Now().Format("2006/01/02 15:04:05"), version, ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		fmt.Fprintf(stderr, "%s [notice] 1#1: signal received, exiting\n", time.Now().Format("2006/01/02 15:04:05"))
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
		<-errc
		return 0
	case err := <-errc:
		fmt.Fprintf(stderr, "nginx: [emerg] %v\n", err)
		return 1
	}
}

// contentFor serves the document root when it exists (a mounted volume),
// else the built-in pages.
func contentFor(root string) fs.FS {
	if fi, err := os.Stat(root); err == nil && fi.IsDir() {
		return os.DirFS(root)
	}
	return builtinPages
}

type handler struct {
	content fs.FS
	log     *accessLog
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	defer h.log.record(r, rec)
	rec.Header().Set("Server", "nginx")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		errorPage(rec, http.StatusMethodNotAllowed)
		return
	}
	p := path.Clean("/" + r.URL.Path)
	name := strings.TrimPrefix(p, "/")
	if name == "" {
		name = "."
	}
	fi, err := fs.Stat(h.content, name)
	if err != nil {
		errorPage(rec, http.StatusNotFound)
		return
	}
	if fi.IsDir() {
		if !strings.HasSuffix(r.URL.Path, "/") {
			rec.Header().Set("Location", p+"/")
			errorPage(rec, http.StatusMovedPermanently)
			return
		}
		name = path.Join(name, "index.html")
		if fi, err = fs.Stat(h.content, name); err != nil || fi.IsDir() {
			// nginx does not list directories.
			errorPage(rec, http.StatusForbidden)
			return
		}
	}
	f, err := h.content.Open(name)
	if err != nil {
		errorPage(rec, http.StatusForbidden)
		return
	}
	defer f.Close()
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		errorPage(rec, http.StatusInternalServerError)
		return
	}
	http.ServeContent(rec, r, name, fi.ModTime(), rs)
}

// errorPage writes nginx's style of error page.
func errorPage(w http.ResponseWriter, code int) {
	text := fmt.Sprintf("%d %s", code, http.StatusText(code))
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(code)
	fmt.Fprintf(w, "<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center><h1>%s</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n", text, text)
}

// recorder keeps what the access log needs.
type recorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// accessLog writes nginx's "combined" format:
// $remote_addr - $remote_user [$time_local] "$request" $status
// $body_bytes_sent "$http_referer" "$http_user_agent"
type accessLog struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

func (l *accessLog) record(r *http.Request, rec *recorder) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	user := "-"
	if u, _, ok := r.BasicAuth(); ok && u != "" {
		user = u
	}
	line := fmt.Sprintf("%s - %s [%s] \"%s %s %s\" %d %d \"%s\" \"%s\"\n",
		host, user, l.now().Format("02/Jan/2006:15:04:05 -0700"), r.Method, r.RequestURI, r.Proto,
		rec.status, rec.bytes, orDash(r.Referer()), orDash(r.UserAgent()))
	l.mu.Lock()
	defer l.mu.Unlock()
	io.WriteString(l.w, line)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return strings.ReplaceAll(s, `"`, `\x22`)
}
