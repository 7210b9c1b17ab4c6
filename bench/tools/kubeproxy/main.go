// Command kube-proxy is upstream kube-proxy, built from the k8s.io/kubernetes
// module at the release portal is measured against (see bench/proxy).
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as the upstream binary registers them
	"k8s.io/kubernetes/cmd/kube-proxy/app"
)

func main() {
	os.Exit(cli.Run(app.NewProxyCommand()))
}
