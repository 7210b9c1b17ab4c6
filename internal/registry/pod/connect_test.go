package pod_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/util/exec"

	"github.com/portal-net/portal/internal/agent/server"
	"github.com/portal-net/portal/internal/apitest"
	"github.com/portal-net/portal/internal/pki"
	"github.com/portal-net/portal/internal/podruntime"
)

// fakeRuntime serves pod default/web (container app): a fixed log, lines
// sent on follow while following, and echo/fail commands.
type fakeRuntime struct {
	podruntime.Runtime
	follow chan string
}

func (f *fakeRuntime) Logs(ctx context.Context, uid types.UID, container string, opts podruntime.LogOptions, w io.Writer) error {
	if container != "app" {
		return podruntime.ErrNotFound
	}
	lines := []string{"one", "two", "three"}
	if opts.TailLines >= 0 && int(opts.TailLines) < len(lines) {
		lines = lines[len(lines)-int(opts.TailLines):]
	}
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	for opts.Follow {
		select {
		case <-ctx.Done():
			return nil
		case l := <-f.follow:
			fmt.Fprintln(w, l)
		}
	}
	return nil
}

func (f *fakeRuntime) Exec(ctx context.Context, uid types.UID, container string, cmd []string, eio podruntime.ExecIO) (int, error) {
	switch cmd[0] {
	case "echo":
		fmt.Fprintln(eio.Stdout, strings.Join(cmd[1:], " "))
		return 0, nil
	case "fail":
		fmt.Fprintln(eio.Stderr, "failing")
		return 7, nil
	}
	return 127, nil
}

type cluster struct {
	*apitest.Server
	rt *fakeRuntime
}

// startCluster runs an API server and a node agent on loopback, a Node
// node-a pointing at the agent, and pod default/web bound to it.
func startCluster(t *testing.T) *cluster {
	s := apitest.Start(t)
	caPEM, err := os.ReadFile(filepath.Join(s.ServerConfig.DataDir, "tls", pki.CACertFileName))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cert, err := server.SelfSignedCert("node-a", []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	rt := &fakeRuntime{follow: make(chan string)}
	agent := server.New(server.Config{
		Runtime:  rt,
		Lookup:   func(ns, pod string) (types.UID, bool) { return "uid-web", ns == "default" && pod == "web" },
		ClientCA: pool,
		TLSCert:  cert,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- agent.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})

	c := s.Client.CoreV1()
	port := ln.Addr().(*net.TCPAddr).Port
	node, err := c.Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
	node.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(port)
	if _, err := c.Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web", "pending"} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}}}
		if _, err := c.Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Target: corev1.ObjectReference{Kind: "Node", Name: "node-a"}}
	if err := c.Pods("default").Bind(ctx, b, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return &cluster{Server: s, rt: rt}
}

func TestPodSubresourcesThroughTheAPI(t *testing.T) {
	s := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pods := s.Client.CoreV1().Pods("default")

	t.Run("logs", func(t *testing.T) {
		tail := int64(2)
		for _, c := range []struct {
			opts corev1.PodLogOptions
			want string
		}{
			{corev1.PodLogOptions{}, "one\ntwo\nthree\n"},
			{corev1.PodLogOptions{Container: "app", TailLines: &tail}, "two\nthree\n"},
		} {
			out, err := pods.GetLogs("web", &c.opts).DoRaw(ctx)
			if err != nil || string(out) != c.want {
				t.Errorf("logs %+v: %q %v, want %q", c.opts, out, err, c.want)
			}
		}
	})

	t.Run("logs follow", func(t *testing.T) {
		one := int64(1)
		rc, err := pods.GetLogs("web", &corev1.PodLogOptions{Follow: true, TailLines: &one}).Stream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		r := bufio.NewReader(rc)
		for _, want := range []string{"three", "four", "five"} {
			if want != "three" {
				s.rt.follow <- want
			}
			l, err := r.ReadString('\n')
			if err != nil || l != want+"\n" {
				t.Fatalf("followed line %q %v, want %q", l, err, want)
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, c := range []struct {
			pod, container string
			check          func(error) bool
			msg            string
		}{
			{"web", "nope", apierrors.IsBadRequest, "container nope is not valid for pod web"},
			{"missing", "", apierrors.IsNotFound, `pods "missing" not found`},
			{"pending", "", apierrors.IsBadRequest, "pod pending is not scheduled to a node yet"},
		} {
			err := pods.GetLogs(c.pod, &corev1.PodLogOptions{Container: c.container}).Do(ctx).Error()
			if !c.check(err) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("logs %s/%s: %v, want %q", c.pod, c.container, err, c.msg)
			}
		}
	})

	execute := func(kind, pod string, opts *corev1.PodExecOptions, so remotecommand.StreamOptions) error {
		req := s.Client.CoreV1().RESTClient().Post().Namespace("default").Resource("pods").Name(pod).SubResource(kind)
		if kind == "exec" {
			req.VersionedParams(opts, scheme.ParameterCodec)
		} else {
			req.VersionedParams(&corev1.PodAttachOptions{Container: opts.Container, Stdout: opts.Stdout, Stderr: opts.Stderr}, scheme.ParameterCodec)
		}
		ex, err := remotecommand.NewWebSocketExecutor(s.Config, "GET", req.URL().String())
		if err != nil {
			t.Fatal(err)
		}
		return ex.StreamWithContext(ctx, so)
	}

	t.Run("exec", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		err := execute("exec", "web", &corev1.PodExecOptions{Container: "app", Command: []string{"echo", "hi", "there"}, Stdout: true, Stderr: true},
			remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
		if err != nil || stdout.String() != "hi there\n" || stderr.Len() != 0 {
			t.Errorf("exec echo: %v stdout %q stderr %q", err, stdout.String(), stderr.String())
		}
		stdout.Reset()
		err = execute("exec", "web", &corev1.PodExecOptions{Container: "app", Command: []string{"fail"}, Stdout: true, Stderr: true},
			remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
		var exitErr exec.ExitError
		if !errors.As(err, &exitErr) || exitErr.ExitStatus() != 7 || stderr.String() != "failing\n" {
			t.Errorf("exec fail: %v stderr %q, want exit code 7", err, stderr.String())
		}
		err = execute("exec", "web", &corev1.PodExecOptions{Container: "nope", Command: []string{"echo"}, Stdout: true},
			remotecommand.StreamOptions{Stdout: io.Discard})
		if err == nil || !strings.Contains(err.Error(), "container nope is not valid for pod web") {
			t.Errorf("exec in unknown container: %v", err)
		}
	})

	t.Run("attach", func(t *testing.T) {
		err := execute("attach", "web", &corev1.PodExecOptions{Container: "app", Stdout: true}, remotecommand.StreamOptions{Stdout: io.Discard})
		if err == nil || !strings.Contains(err.Error(), "attach is not supported by this runtime yet") {
			t.Errorf("attach: %v", err)
		}
	})
	// kubectl logs and exec with the real binary: test/e2e.
}
