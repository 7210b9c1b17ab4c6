package cli

import (
	"os"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/portal-net/portal/internal/config"
	"github.com/portal-net/portal/internal/controllermanager"
)

// newControllerManagerCommand runs the controllers and scheduler alone
// against any API server, as kube-controller-manager does; `portal server`
// already runs them in-process.
func newControllerManagerCommand() *cobra.Command {
	c := config.DefaultControllers()
	kubeconfig := defaultKubeconfig()
	cmd := &cobra.Command{
		Use:   "controller-manager",
		Short: "Run only the controllers and scheduler against an API server (--kubeconfig)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.Validate(); err != nil {
				return err
			}
			rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				return err
			}
			c.RootCAPEM = rc.TLSClientConfig.CAData
			if len(c.RootCAPEM) == 0 && rc.TLSClientConfig.CAFile != "" {
				if c.RootCAPEM, err = os.ReadFile(rc.TLSClientConfig.CAFile); err != nil {
					return err
				}
			}
			m, err := controllermanager.New(rc, c)
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			return m.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", kubeconfig, "kubeconfig of the API server")
	bindControllerFlags(cmd.Flags(), &c)
	_ = cmd.Flags().MarkHidden("disable-controllers")
	return cmd
}
