package shim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portal-net/portal/internal/podruntime"
)

func TestLogPath(t *testing.T) {
	if got := LogPath("/pods/u1", "web", 3); got != "/pods/u1/containers/web/3.log" {
		t.Errorf("LogPath = %q", got)
	}
}

func TestReadState(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadState(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadState of an empty dir: %v", err)
	}
	want := State{Generation: 4, Pid: 99, Containers: []Container{{
		ContainerStatus: podruntime.ContainerStatus{Name: "c", State: podruntime.StateExited, ExitCode: 3, Reason: "Error"},
		Spec:            StartRequest{Name: "c", Argv: []string{"/bin/false"}, Env: []string{"A=b"}},
	}}}
	b, _ := json.Marshal(want)
	os.WriteFile(filepath.Join(dir, StateFile), b, 0o600)
	got, err := ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := got.Container("c")
	if !ok || c.ExitCode != 3 || c.Spec.Env[0] != "A=b" || got.Generation != 4 {
		t.Errorf("ReadState = %+v", got)
	}
	if _, ok := got.Container("other"); ok {
		t.Error("found a container that is not there")
	}
}

// TestClient checks the client's side of the protocol against a stand-in
// server on the pod directory's socket.
func TestClient(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("unix", filepath.Join(dir, SocketFile))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /state", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, State{Generation: 7})
	})
	mux.HandleFunc("POST /stop", func(w http.ResponseWriter, r *http.Request) {
		var req StopRequest
		json.NewDecoder(r.Body).Decode(&req)
		if req.Name != "c" || req.Grace != 2*time.Second {
			httpError(w, http.StatusBadRequest, "bad request %+v", req)
			return
		}
		httpError(w, http.StatusNotFound, "no container %s", req.Name)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()

	c := NewClient(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.State(ctx)
	if err != nil || st.Generation != 7 {
		t.Fatalf("State = %+v, %v", st, err)
	}
	err = c.Stop(ctx, StopRequest{Name: "c", Grace: 2 * time.Second})
	var se *Error
	if !errors.As(err, &se) || !IsNotFound(err) || se.Message != "no container c" {
		t.Errorf("Stop = %v", err)
	}
	if _, err := NewClient(t.TempDir()).State(ctx); err == nil {
		t.Error("State of a directory without a shim succeeded")
	}
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "tool")
	os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "data"), nil, 0o644)
	for _, tc := range []struct {
		name string
		env  []string
		want string
		ok   bool
	}{
		{"tool", []string{"PATH=/nonexistent:" + dir}, exe, true},
		{"data", []string{"PATH=" + dir}, "", false},
		{"tool", nil, "", false},
		{"./rel/x", nil, "./rel/x", true},
	} {
		got, err := lookPath(tc.name, tc.env)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("lookPath(%q, %q) = %q, %v", tc.name, tc.env, got, err)
		}
	}
}

func TestLongSocketPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := listenUnix(dir)
	if err != nil {
		t.Fatalf("listen on a %d-byte path: %v", len(filepath.Join(dir, SocketFile)), err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			_, _ = c.Write([]byte("ok"))
			c.Close()
		}
	}()
	c, err := dialUnix(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, _ := io.ReadAll(c)
	if string(b) != "ok" {
		t.Errorf("read %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, SocketFile)); err != nil {
		t.Errorf("socket file not at its real path: %v", err)
	}
}
