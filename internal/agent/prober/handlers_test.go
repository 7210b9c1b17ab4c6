package prober

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func runOnce(t *testing.T, pr *prober, h v1.ProbeHandler, c *v1.Container) (bool, string) {
	t.Helper()
	if c == nil {
		c = &v1.Container{Name: "app"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return pr.run(ctx, &v1.Probe{ProbeHandler: h}, target{uid: testUID, container: c, podIP: "127.0.0.1"})
}

func TestHTTPHandler(t *testing.T) {
	var seen *http.Request
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { seen = r.Clone(context.Background()) })
	mux.HandleFunc("/teapot", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	mux.HandleFunc("/local-redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/teapot", http.StatusFound)
	})
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		// Another host name: not followed, the 302 itself counts.
		http.Redirect(w, r, "http://localhost:1/teapot", http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	tlsSrv := httptest.NewTLSServer(mux)
	defer tlsSrv.Close()
	port := intstr.FromInt32(serverPort(t, srv.Listener.Addr()))
	tlsPort := intstr.FromInt32(serverPort(t, tlsSrv.Listener.Addr()))
	refused := intstr.FromInt32(closedPort(t))

	pr := newProber(Options{})
	for _, tc := range []struct {
		name   string
		action v1.HTTPGetAction
		ok     bool
		msg    string
	}{
		{"200", v1.HTTPGetAction{Path: "/ok", Port: port}, true, ""},
		{"path without slash", v1.HTTPGetAction{Path: "ok", Port: port}, true, ""},
		{"404", v1.HTTPGetAction{Path: "/missing", Port: port}, false, "HTTP probe failed with statuscode: 404"},
		{"redirect followed on the same host", v1.HTTPGetAction{Path: "/local-redirect", Port: port}, false, "HTTP probe failed with statuscode: 418"},
		{"redirect to another host not followed", v1.HTTPGetAction{Path: "/away", Port: port}, true, ""},
		{"https without verification", v1.HTTPGetAction{Path: "/ok", Port: tlsPort, Scheme: v1.URISchemeHTTPS}, true, ""},
		{"explicit host", v1.HTTPGetAction{Path: "/ok", Port: port, Host: "127.0.0.1"}, true, ""},
		{"connection refused", v1.HTTPGetAction{Path: "/", Port: refused}, false, "connect: connection refused"},
		{"bad named port", v1.HTTPGetAction{Port: intstr.FromString("web")}, false, `port "web" not found in container`},
		{"port out of range", v1.HTTPGetAction{Port: intstr.FromInt32(70000)}, false, "invalid port number: 70000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, msg := runOnce(t, pr, v1.ProbeHandler{HTTPGet: &tc.action}, nil)
			if ok != tc.ok || (tc.msg == "" && msg != "") || !strings.Contains(msg, tc.msg) {
				t.Fatalf("got ok=%v %q, want ok=%v %q", ok, msg, tc.ok, tc.msg)
			}
		})
	}

	t.Run("headers", func(t *testing.T) {
		seen = nil
		ok, msg := runOnce(t, pr, v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: "/ok?x=1", Port: port, HTTPHeaders: []v1.HTTPHeader{
			{Name: "X-Probe", Value: "yes"}, {Name: "Host", Value: "app.example"},
		}}}, nil)
		if !ok || seen == nil {
			t.Fatalf("probe failed: %q", msg)
		}
		if seen.Host != "app.example" || seen.Header.Get("X-Probe") != "yes" || seen.URL.RawQuery != "x=1" ||
			!strings.HasPrefix(seen.UserAgent(), "kube-probe/") || seen.Header.Get("Accept") != "*/*" {
			t.Fatalf("request host=%q headers=%v query=%q", seen.Host, seen.Header, seen.URL.RawQuery)
		}
		runOnce(t, pr, v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: "/ok", Port: port, HTTPHeaders: []v1.HTTPHeader{
			{Name: "User-Agent", Value: "mine"}, {Name: "Accept", Value: "text/plain"},
		}}}, nil)
		if seen.UserAgent() != "mine" || seen.Header.Get("Accept") != "text/plain" {
			t.Fatalf("probe headers not overridden: %v", seen.Header)
		}
	})
}

func TestTCPHandler(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	c := &v1.Container{Name: "app", Ports: []v1.ContainerPort{{Name: "db", ContainerPort: serverPort(t, l.Addr())}}}
	pr := newProber(Options{})
	for _, tc := range []struct {
		name string
		port intstr.IntOrString
		ok   bool
		msg  string
	}{
		{"open", intstr.FromInt32(serverPort(t, l.Addr())), true, ""},
		{"named", intstr.FromString("db"), true, ""},
		{"number as string", intstr.FromString(strconv.Itoa(int(serverPort(t, l.Addr())))), true, ""},
		{"refused", intstr.FromInt32(closedPort(t)), false, "dial tcp 127.0.0.1:"},
		{"unknown name", intstr.FromString("x"), false, `port "x" not found in container`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, msg := runOnce(t, pr, v1.ProbeHandler{TCPSocket: &v1.TCPSocketAction{Port: tc.port}}, c)
			if ok != tc.ok || !strings.Contains(msg, tc.msg) {
				t.Fatalf("got ok=%v %q, want ok=%v %q", ok, msg, tc.ok, tc.msg)
			}
			if !tc.ok && tc.name == "refused" && !strings.HasSuffix(msg, "connect: connection refused") {
				t.Fatalf("message %q", msg)
			}
		})
	}
}

func TestGRPCHandler(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("db", healthpb.HealthCheckResponse_NOT_SERVING)
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	go gs.Serve(l) //nolint:errcheck // ends with Stop
	defer gs.Stop()

	bare := grpc.NewServer() // no health service
	bl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go bare.Serve(bl) //nolint:errcheck // ends with Stop
	defer bare.Stop()

	pr := newProber(Options{})
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		name   string
		action v1.GRPCAction
		ok     bool
		msg    string
	}{
		{"serving", v1.GRPCAction{Port: serverPort(t, l.Addr())}, true, ""},
		{"not serving", v1.GRPCAction{Port: serverPort(t, l.Addr()), Service: str("db")}, false, `service unhealthy (responded with "NOT_SERVING")`},
		{"unknown service", v1.GRPCAction{Port: serverPort(t, l.Addr()), Service: str("nope")}, false, "health rpc probe failed"},
		{"no health service", v1.GRPCAction{Port: serverPort(t, bl.Addr())}, false, "does not implement the grpc health protocol"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, msg := runOnce(t, pr, v1.ProbeHandler{GRPC: &tc.action}, nil)
			if ok != tc.ok || !strings.Contains(msg, tc.msg) {
				t.Fatalf("got ok=%v %q, want ok=%v %q", ok, msg, tc.ok, tc.msg)
			}
		})
	}
}

func TestMissingHandlers(t *testing.T) {
	pr := newProber(Options{})
	if ok, msg := runOnce(t, pr, v1.ProbeHandler{}, nil); ok || msg != "missing probe handler" {
		t.Fatalf("empty handler: %v %q", ok, msg)
	}
	if ok, msg := runOnce(t, pr, v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"true"}}}, nil); ok || !strings.Contains(msg, "not supported") {
		t.Fatalf("exec without ExecFunc: %v %q", ok, msg)
	}
}
