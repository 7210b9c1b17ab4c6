// Command memberlist-node runs one member of a hashicorp/memberlist
// cluster the way MetalLB's speaker does (internal/speakerlist in
// metallb/metallb): memberlist.DefaultLANConfig() with only the name, the
// bind address and port, the advertised port and an event channel set.
// MetalLB counts a node usable while it is in Members(), so a dead node
// stops being usable when memberlist declares it dead (NodeLeave).
//
// It prints one line per membership event to stdout,
//
//	join NAME UNIXNANO
//	leave NAME UNIXNANO
//
// retries joining the -join addresses until one answers, and runs until
// SIGTERM or SIGINT. Memberlist's own log goes to stderr.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/memberlist"
)

func main() {
	name := flag.String("name", "", "member name (MetalLB: the node name)")
	bind := flag.String("bind", "", "address to bind and advertise")
	port := flag.Int("port", 7946, "memberlist port, TCP and UDP (MetalLB's default)")
	join := flag.String("join", "", "comma-separated addresses of other members")
	flag.Parse()
	if *name == "" || *bind == "" {
		fmt.Fprintln(os.Stderr, "memberlist-node: -name and -bind are required")
		os.Exit(2)
	}

	c := memberlist.DefaultLANConfig()
	c.Name = *name
	c.BindAddr = *bind
	c.BindPort = *port
	c.AdvertisePort = *port
	// MetalLB's channel is this big too: the delegate must not block.
	events := make(chan memberlist.NodeEvent, 1024)
	c.Events = &memberlist.ChannelEventDelegate{Ch: events}
	ml, err := memberlist.Create(c)
	if err != nil {
		fmt.Fprintf(os.Stderr, "memberlist-node: %v\n", err)
		os.Exit(1)
	}

	out := bufio.NewWriter(os.Stdout)
	go func() {
		for e := range events {
			// Stamped on receipt: the delegate hands the event over at
			// the moment memberlist changes its member list.
			now := time.Now().UnixNano()
			kind := "update"
			switch e.Event {
			case memberlist.NodeJoin:
				kind = "join"
			case memberlist.NodeLeave:
				kind = "leave"
			}
			fmt.Fprintf(out, "%s %s %d\n", kind, e.Node.Name, now)
			out.Flush()
		}
	}()

	var peers []string
	for _, p := range strings.Split(*join, ",") {
		if p = strings.TrimSpace(p); p != "" {
			peers = append(peers, p)
		}
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	// The others may not be up yet: retry until one of them answers
	// (memberlist then learns the rest by gossip).
	for len(peers) > 0 {
		if _, err := ml.Join(peers); err == nil {
			break
		}
		select {
		case <-stop:
			_ = ml.Shutdown()
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	<-stop
	// Shutdown without Leave: the benchmark stops members only after the
	// measurement, and a graceful leave is not what a dead node does.
	_ = ml.Shutdown()
}
