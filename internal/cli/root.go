package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/portal-net/portal/internal/version"
)

// Main runs portal with argv and returns the exit code. Invoked through a
// link named kubectl, it is kubectl.
func Main(argv []string) int {
	if filepath.Base(argv[0]) == "kubectl" {
		return runKubectl(argv[1:])
	}
	if len(argv) > 1 && argv[1] == "kubectl" {
		// kubectl parses its own flags; cobra must not see them.
		return runKubectl(argv[2:])
	}
	root := newRoot()
	root.SetArgs(argv[1:])
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	return 0
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "portal",
		Short:         "portal: a Kubernetes-compatible cluster in one binary, built around Service networking",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// Log verbosity as every Kubernetes component spells it: -v 4, --v=4.
	logFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(logFlags)
	for _, name := range []string{"v", "vmodule"} {
		root.PersistentFlags().AddGoFlag(logFlags.Lookup(name))
	}
	root.AddCommand(newUpCommand(), newServerCommand(), newAgentCommand(), newControllerManagerCommand(), newKubectlCommand(), newVersionCommand())
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print portal's version and the Kubernetes API version it serves",
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "portal %s (Kubernetes API v%s)\n", version.Version, version.KubernetesVersion)
			return nil
		},
	}
}

// signalContext ends on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
