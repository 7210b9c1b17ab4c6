// Command coredns is upstream CoreDNS, built from the github.com/coredns/coredns
// module with its standard plugin set, the peer bench/dns measures portal's
// cluster DNS against.
package main

import (
	_ "github.com/coredns/coredns/core/plugin" // every standard plugin, as upstream's main links them
	"github.com/coredns/coredns/coremain"
)

func main() {
	coremain.Run()
}
