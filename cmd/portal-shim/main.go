// Command portal-shim is the pod supervisor, container init and built-in
// images of portal's local runtime; see internal/shimcmd.
package main

import (
	"os"

	"github.com/portal-net/portal/internal/shimcmd"
)

func main() { os.Exit(shimcmd.Program(os.Args)) }
