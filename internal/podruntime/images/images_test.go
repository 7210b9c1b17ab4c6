package images

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/portal-net/portal/internal/podruntime"
)

const shim = "/opt/portal/bin/portal-shim"

func TestResolve(t *testing.T) {
	withBusybox := []string{"/bin/sh", "/usr/bin/sleep", "/usr/bin/busybox", "/usr/local/bin/app", "/bin/bash"}
	noBusybox := []string{"/bin/sh", "/usr/bin/sleep"}
	tests := []struct {
		name    string
		host    []string // executables on the host
		image   string
		command []string
		args    []string
		want    []string
		wantErr string // substring of the ImageError message
	}{
		// agnhost
		{name: "agnhost subcommand in args", image: "registry.k8s.io/e2e-test-images/agnhost:2.53",
			args: []string{"netexec", "--http-port=8080"}, want: []string{shim, "agnhost", "netexec", "--http-port=8080"}},
		{name: "agnhost no command no args runs its default cmd, pause", image: "agnhost", want: []string{shim, "agnhost", "pause"}},
		{name: "agnhost command alone prints usage", image: "agnhost", command: []string{"/agnhost"}, want: []string{shim, "agnhost"}},
		{name: "agnhost command /agnhost", image: "k8s.gcr.io/agnhost:2.1@sha256:abc",
			command: []string{"/agnhost", "serve-hostname"}, args: []string{"--port=9376"},
			want: []string{shim, "agnhost", "serve-hostname", "--port=9376"}},
		{name: "agnhost command bare", image: "agnhost:latest", command: []string{"agnhost"}, args: []string{"pause"},
			want: []string{shim, "agnhost", "pause"}},
		{name: "agnhost with shell command", host: noBusybox, image: "registry.k8s.io/e2e-test-images/agnhost:2.53",
			command: []string{"sh", "-c", "sleep 1"}, want: []string{"/bin/sh", "-c", "sleep 1"}},
		{name: "agnhost with /bin/sh", host: noBusybox, image: "agnhost", command: []string{"/bin/sh"}, args: []string{"-c", "true"},
			want: []string{"/bin/sh", "-c", "true"}},
		{name: "agnhost unknown command", host: noBusybox, image: "agnhost", command: []string{"/bin/nope"},
			wantErr: `image "agnhost" cannot run on this node: no registry is reachable and command "/bin/nope" is not on the host`},
		// pause
		{name: "pause", image: "registry.k8s.io/pause:3.10", want: []string{shim, "pause"}},
		{name: "pause ignores args", image: "pause", args: []string{"x"}, want: []string{shim, "pause"}},
		{name: "pause command /pause", image: "pause", command: []string{"/pause"}, want: []string{shim, "pause"}},
		// nginx / httpd
		{name: "nginx", image: "nginx:1.27", want: []string{shim, "nginx"}},
		{name: "nginx alpine tag", image: "docker.io/library/nginx:1.27-alpine", want: []string{shim, "nginx"}},
		{name: "nginx-slim", image: "registry.k8s.io/nginx-slim:0.8", want: []string{shim, "nginx"}},
		{name: "httpd", image: "httpd:2.4", want: []string{shim, "nginx"}},
		{name: "nginx command nginx keeps flags", image: "nginx", command: []string{"nginx", "-g", "daemon off;"},
			want: []string{shim, "nginx", "-g", "daemon off;"}},
		{name: "nginx args nginx", image: "nginx", args: []string{"nginx", "-g", "daemon off;"},
			want: []string{shim, "nginx", "-g", "daemon off;"}},
		{name: "nginx command from host", host: noBusybox, image: "nginx", command: []string{"sleep"}, args: []string{"10"},
			want: []string{"/usr/bin/sleep", "10"}},
		{name: "nginx command missing", host: noBusybox, image: "nginx", command: []string{"/docker-entrypoint.sh"},
			wantErr: `command "/docker-entrypoint.sh" is not on the host`},
		// busybox
		{name: "busybox default sh", host: withBusybox, image: "busybox", want: []string{"/usr/bin/busybox", "sh"}},
		{name: "busybox command sh", host: withBusybox, image: "busybox:1.36", command: []string{"sh", "-c", "echo hi"},
			want: []string{"/usr/bin/busybox", "sh", "-c", "echo hi"}},
		{name: "busybox command /bin/sh with args", host: withBusybox, image: "gcr.io/google-containers/busybox",
			command: []string{"/bin/sh", "-c"}, args: []string{"sleep 3600"},
			want: []string{"/usr/bin/busybox", "sh", "-c", "sleep 3600"}},
		{name: "busybox args are the command", host: withBusybox, image: "busybox", args: []string{"sleep", "3600"},
			want: []string{"/usr/bin/busybox", "sleep", "3600"}},
		{name: "busybox applet not on host", host: withBusybox, image: "busybox", command: []string{"nslookup", "kubernetes"},
			want: []string{"/usr/bin/busybox", "nslookup", "kubernetes"}},
		{name: "busybox without host busybox uses host sh", host: noBusybox, image: "busybox",
			command: []string{"/bin/sh", "-c", "true"}, want: []string{"/bin/sh", "-c", "true"}},
		{name: "busybox without host busybox default", host: noBusybox, image: "busybox", want: []string{"/bin/sh"}},
		{name: "busybox without host busybox missing applet", host: noBusybox, image: "busybox", command: []string{"nslookup"},
			wantErr: `image "busybox" cannot run on this node: no registry is reachable and command "nslookup" is not on the host`},
		// distributions and others
		{name: "alpine command", host: withBusybox, image: "alpine:3.20", command: []string{"sleep", "5"},
			want: []string{"/usr/bin/sleep", "5"}},
		{name: "debian args are the command", host: withBusybox, image: "debian:12", args: []string{"bash", "-c", "true"},
			want: []string{"/bin/bash", "-c", "true"}},
		{name: "ubuntu no command", host: withBusybox, image: "ubuntu",
			wantErr: `image "ubuntu" is not built in (agnhost, pause, nginx, busybox) and the pod gives no command to run from the host`},
		{name: "other absolute command", host: withBusybox, image: "quay.io/me/app:v1", command: []string{"/usr/local/bin/app"},
			args: []string{"--x"}, want: []string{"/usr/local/bin/app", "--x"}},
		{name: "other bare command", host: withBusybox, image: "myapp", command: []string{"app"}, want: []string{"/usr/local/bin/app"}},
		{name: "other relative command", host: withBusybox, image: "myapp", command: []string{"./app"},
			wantErr: `command "./app" is not on the host`},
		{name: "other missing command", host: withBusybox, image: "myapp:1", command: []string{"/app/server"},
			wantErr: `image "myapp:1" cannot run on this node: no registry is reachable and command "/app/server" is not on the host`},
		{name: "other no command", host: withBusybox, image: "registry.example:5000/team/myapp:1", args: []string{"--port=1"},
			wantErr: `image "registry.example:5000/team/myapp:1" is not built in (agnhost, pause, nginx, busybox) and the pod gives no command to run from the host`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]bool{}
			for _, f := range tc.host {
				files[f] = true
			}
			r := resolver{executable: func(p string) bool { return files[p] }}
			got, err := r.resolve(tc.image, tc.command, tc.args, shim)
			if tc.wantErr != "" {
				var ie *podruntime.ImageError
				if !errors.As(err, &ie) {
					t.Fatalf("got %q, %v; want ImageError", got, err)
				}
				if ie.Reason != "ImageNotRunnable" || !strings.Contains(ie.Message, tc.wantErr) {
					t.Fatalf("got %+v; want ImageNotRunnable containing %q", ie, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"agnhost":      "agnhost",
		"agnhost:2.53": "agnhost",
		"registry.k8s.io/e2e-test-images/agnhost:2.53": "agnhost",
		"localhost:5000/agnhost":                       "agnhost",
		"localhost:5000/x/Nginx:1.2@sha256:0123abcd":   "nginx",
		"busybox@sha256:0123":                          "busybox",
		"docker.io/library/busybox:1.36.1-uclibc":      "busybox",
	} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestResolveHost checks Resolve against the real filesystem: a command is
// found only when it is an executable file.
func TestResolveHost(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "run")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "data")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Resolve("myapp", []string{exe}, []string{"a"}, shim)
	if err != nil || !reflect.DeepEqual(got, []string{exe, "a"}) {
		t.Fatalf("executable: got %q, %v", got, err)
	}
	for _, c := range []string{plain, dir, filepath.Join(dir, "missing")} {
		if _, err := Resolve("myapp", []string{c}, nil, shim); err == nil {
			t.Errorf("%s: want ImageError", c)
		}
	}
	got, err = Resolve("alpine", []string{"sh"}, nil, shim)
	if err != nil || !filepath.IsAbs(got[0]) {
		t.Fatalf("sh on host: got %q, %v", got, err)
	}
}

func TestFiles(t *testing.T) {
	files, err := Files("registry.k8s.io/e2e-test-images/agnhost:2.53", "/opt/portal-shim")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]podruntime.File{}
	for _, f := range files {
		got[f.Path] = f
	}
	if got["/agnhost"].HostPath != "/opt/portal-shim" {
		t.Errorf("/agnhost: %+v", got["/agnhost"])
	}
	if !strings.HasPrefix(string(got["/localhost.crt"].Data), "-----BEGIN CERTIFICATE-----") || len(got["/localhost.key"].Data) == 0 {
		t.Errorf("agnhost's certificate files missing: %v", got)
	}
	if files, _ := Files("registry.k8s.io/pause:3.10", "/opt/portal-shim"); len(files) != 1 || files[0].Path != "/pause" {
		t.Errorf("pause: %+v", files)
	}
	if files, _ := Files("busybox:1.36", "/opt/portal-shim"); len(files) != 0 {
		t.Errorf("busybox: %+v", files)
	}
}
