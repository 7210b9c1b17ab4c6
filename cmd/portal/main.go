// Command portal is every role of a portal cluster in one binary.
package main

import (
	"os"

	"github.com/portal-net/portal/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args))
}
