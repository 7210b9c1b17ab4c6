package images

import (
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/portal-net/portal/internal/podruntime"
	"github.com/portal-net/portal/internal/podruntime/builtin/localcert"
)

// ReasonNotRunnable is the waiting reason for an image that cannot run here.
const ReasonNotRunnable = "ImageNotRunnable"

// hostPath is searched for bare command names. It is fixed rather than
// taken from the agent's environment so that what a pod runs does not
// depend on how the agent was started.
var hostPath = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// Resolve returns the argv that runs a container of image with the pod's
// command (entrypoint override) and args; argv[0] is an absolute path.
// shim is the absolute path of the binary that embeds the built-in images
// (it is run as "shim agnhost ...", "shim pause", "shim nginx").
//
// Command and args follow the image's entrypoint/cmd as Kubernetes does:
// command replaces the entrypoint (and drops the image's default args),
// args alone replace the default args.
func Resolve(image string, command, args []string, shim string) ([]string, error) {
	return resolver{executable: isExecutable}.resolve(image, command, args, shim)
}

// resolver holds the one host lookup Resolve needs, so tests can describe
// the host filesystem.
type resolver struct {
	executable func(path string) bool
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

func (r resolver) resolve(image string, command, args []string, shim string) ([]string, error) {
	name := Name(image)
	switch {
	case name == "agnhost":
		// The agnhost image's entrypoint is /agnhost, its default args
		// "pause" (a pod that only holds its namespaces, like the upstream
		// specs' host-exec pods).
		if len(command) == 0 {
			if len(args) == 0 {
				args = []string{"pause"}
			}
			return join([]string{shim, "agnhost"}, args), nil
		}
		if isProgram(command[0], "agnhost") {
			return join([]string{shim, "agnhost"}, command[1:], args), nil
		}
		return r.host(image, command, args)

	case name == "pause" || strings.HasPrefix(name, "pause-"):
		if len(command) == 0 || isProgram(command[0], "pause") {
			return []string{shim, "pause"}, nil
		}
		return r.host(image, command, args)

	case strings.HasPrefix(name, "nginx") || strings.HasPrefix(name, "httpd"):
		// Their default cmd is the server ("nginx -g 'daemon off;'",
		// "httpd-foreground"); args naming the server keep its flags,
		// other args replace the cmd and so are the command.
		if len(command) == 0 && len(args) == 0 {
			return []string{shim, "nginx"}, nil
		}
		argv := join(command, args)
		if isServer(argv[0]) {
			return join([]string{shim, "nginx"}, argv[1:]), nil
		}
		return r.host(image, argv[:1], argv[1:])

	case strings.HasPrefix(name, "busybox"):
		// busybox has no entrypoint and cmd "sh": args alone are the
		// command line.
		argv := join(command, args)
		if len(argv) == 0 {
			argv = []string{"sh"}
		}
		if bb, ok := r.lookPath("busybox"); ok {
			return join([]string{bb, path.Base(argv[0])}, argv[1:]), nil
		}
		// Without a host busybox the applet may still exist on the host
		// under the same name (sh, sleep, wget...).
		return r.host(image, []string{path.Base(argv[0])}, argv[1:])

	case isDistro(name):
		// Distribution images have no entrypoint either: args alone are
		// the command line.
		argv := join(command, args)
		if len(argv) == 0 {
			return nil, notBuiltIn(image)
		}
		return r.host(image, argv[:1], argv[1:])

	default:
		if len(command) == 0 {
			return nil, notBuiltIn(image)
		}
		return r.host(image, command, args)
	}
}

// Files returns the files image puts into a container's root, as the
// real image's layers would: agnhost's /agnhost (the built-in, so
// "kubectl exec ... /agnhost dns-suffix" works as with the real image)
// with /localhost.crt and /localhost.key, pause's /pause. shim is the
// binary that embeds the built-in images; it runs as the program its
// file is named after.
func Files(image, shim string) ([]podruntime.File, error) {
	switch name := Name(image); {
	case name == "agnhost":
		cert, key, err := localcert.PEM()
		if err != nil {
			return nil, err
		}
		return []podruntime.File{
			{Path: "/agnhost", HostPath: shim},
			{Path: "/localhost.crt", Data: cert, Mode: 0o644},
			{Path: "/localhost.key", Data: key, Mode: 0o600},
		}, nil
	case name == "pause" || strings.HasPrefix(name, "pause-"):
		return []podruntime.File{{Path: "/pause", HostPath: shim}}, nil
	}
	return nil, nil
}

// host resolves command[0] on the host filesystem.
func (r resolver) host(image string, command, args []string) ([]string, error) {
	c := command[0]
	var p string
	switch {
	case path.IsAbs(c):
		if r.executable(c) {
			p = c
		}
	case !strings.Contains(c, "/") && c != "":
		p, _ = r.lookPath(c)
	}
	if p == "" {
		return nil, &podruntime.ImageError{Reason: ReasonNotRunnable, Message: fmt.Sprintf(
			"image %q cannot run on this node: no registry is reachable and command %q is not on the host", image, c)}
	}
	return join([]string{p}, command[1:], args), nil
}

func (r resolver) lookPath(name string) (string, bool) {
	for _, dir := range hostPath {
		if p := path.Join(dir, name); r.executable(p) {
			return p, true
		}
	}
	return "", false
}

func notBuiltIn(image string) error {
	return &podruntime.ImageError{Reason: ReasonNotRunnable, Message: fmt.Sprintf(
		"image %q is not built in (agnhost, pause, nginx, busybox) and the pod gives no command to run from the host", image)}
}

// Name returns the last path component of an image reference, without
// registry, tag or digest, in lower case: "registry.k8s.io/e2e-test-images/
// agnhost:2.53@sha256:..." is "agnhost".
func Name(image string) string {
	ref := image
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndexByte(ref, '/'); i >= 0 {
		ref = ref[i+1:]
	}
	// After the last slash a colon can only start the tag (a registry
	// port is always followed by a path).
	if i := strings.IndexByte(ref, ':'); i >= 0 {
		ref = ref[:i]
	}
	return strings.ToLower(ref)
}

// isProgram reports whether c names program as the image would see it:
// "agnhost", "/agnhost", "/usr/local/bin/agnhost".
func isProgram(c, program string) bool {
	return c == program || (path.IsAbs(c) && path.Base(c) == program)
}

func isServer(c string) bool {
	return isProgram(c, "nginx") || isProgram(c, "httpd") || isProgram(c, "httpd-foreground")
}

var distros = []string{"alpine", "debian", "ubuntu", "centos", "fedora", "rockylinux", "almalinux", "bash"}

func isDistro(name string) bool {
	for _, d := range distros {
		if strings.HasPrefix(name, d) {
			return true
		}
	}
	return false
}

func join(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	if out == nil {
		out = []string{}
	}
	return out
}
