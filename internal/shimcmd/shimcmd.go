// Package shimcmd is the command line of the pod supervisor binary
// (cmd/portal-shim, and the hidden "portal runtime" command): the per-pod
// "shim", the container "init", and the built-in images. It stays small
// so that the binary starts in a few milliseconds.
package shimcmd

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/portal-net/portal/internal/podruntime/builtin/agnhost"
	"github.com/portal-net/portal/internal/podruntime/builtin/nginx"
	"github.com/portal-net/portal/internal/podruntime/shim"
)

// Program runs the process whose command line is argv: a built-in image's
// program file (/agnhost, /pause in a container) runs as that program,
// anything else is Main(argv[1:]).
func Program(argv []string) int {
	if len(argv) > 0 {
		switch name := filepath.Base(argv[0]); name {
		case "agnhost", "pause":
			return Main(append([]string{name}, argv[1:]...))
		}
	}
	return Main(argv[1:])
}

// Main runs the subcommand in args[0] and returns the exit code. args are
// the process arguments after the program name and after any prefix that
// selected this command (such as "runtime"): the shim re-runs the same
// prefix to start a container's init.
func Main(args []string) int {
	if len(args) == 0 {
		usage(os.Stderr)
		return 2
	}
	switch args[0] {
	case "shim":
		return runShim(args)
	case "init":
		return shim.Init()
	case "agnhost":
		return agnhost.Main(args[1:])
	case "nginx":
		return nginx.Main(args[1:])
	case "pause":
		return pause()
	default:
		fmt.Fprintf(os.Stderr, "unknown subcommand %q\n", args[0])
		usage(os.Stderr)
		return 2
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: portal-shim <shim|init|agnhost|nginx|pause> [args]")
}

// ShimArgs is the command line the runtime gives "shim".
type ShimArgs struct {
	Dir      string
	Hostname string
}

// Args returns the arguments (after the subcommand prefix) that start a
// shim for a.
func (a ShimArgs) Args() []string {
	out := []string{"shim", "--dir", a.Dir}
	if a.Hostname != "" {
		out = append(out, "--hostname", a.Hostname)
	}
	return out
}

func runShim(args []string) int {
	var a ShimArgs
	fs := flag.NewFlagSet("shim", flag.ContinueOnError)
	fs.StringVar(&a.Dir, "dir", "", "pod directory")
	fs.StringVar(&a.Hostname, "hostname", "", "hostname to set (own UTS namespace only)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if a.Dir == "" {
		fmt.Fprintln(os.Stderr, "shim: --dir is required")
		return 2
	}
	// The prefix between the program name and args selected this command;
	// init is reached the same way.
	prefix := []string{}
	if n := len(os.Args) - len(args); n > 1 {
		prefix = os.Args[1:n]
	}
	initArgv := append(append([]string{"/proc/self/exe"}, prefix...), "init")
	if err := shim.Run(context.Background(), shim.Config{Dir: a.Dir, Hostname: a.Hostname, InitArgv: initArgv}); err != nil {
		fmt.Fprintf(os.Stderr, "shim: %v\n", err)
		return 1
	}
	return 0
}

// pause is the sandbox's placeholder process: it waits to be stopped.
func pause() int {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
	return 0
}
