package cli

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/portal-net/portal/internal/config"
)

// defaultKubeconfig is where `portal up` / `portal server` write the admin
// kubeconfig unless told otherwise.
func defaultKubeconfig() string {
	if d := os.Getenv("PORTAL_DATA_DIR"); d != "" {
		return filepath.Join(d, "kubeconfig")
	}
	return filepath.Join(config.DefaultDataDir, "kubeconfig")
}

// runKubectl runs the real kubectl, pointed at the local cluster unless
// KUBECONFIG or --kubeconfig says otherwise.
func runKubectl(args []string) int {
	if os.Getenv("KUBECONFIG") == "" && !hasFlag(args, "--kubeconfig") {
		if _, err := os.Stat(defaultKubeconfig()); err == nil {
			os.Setenv("KUBECONFIG", defaultKubeconfig())
		}
	}
	cmd := kubectlcmd.NewDefaultKubectlCommand()
	cmd.SetArgs(args)
	if err := cli.RunNoErrOutput(cmd); err != nil {
		// Prints "error: ..." and exits with kubectl's own codes.
		cmdutil.CheckErr(err)
	}
	return 0
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == name || len(a) > len(name) && a[:len(name)+1] == name+"=" {
			return true
		}
	}
	return false
}

// newKubectlCommand is only for help output: Main hands `portal kubectl`
// to kubectl before cobra parses anything.
func newKubectlCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "kubectl [args...]",
		Short:              "Run kubectl against this portal cluster (also: invoke portal through a link named kubectl)",
		DisableFlagParsing: true,
		Run: func(cmd *cobra.Command, args []string) {
			os.Exit(runKubectl(args))
		},
	}
}
