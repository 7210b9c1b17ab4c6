package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/portal-net/portal/internal/testutil/portalproc"
)

// memberlistRound runs memberlist-node in each node namespace, cuts
// node-1 off once all three see each other, and returns how long until
// both node-2 and node-3 have declared node-1 dead (NodeLeave): the moment
// MetalLB's speakers would stop counting node-1 as usable and elect
// another announcer.
func memberlistRound(ctx context.Context, bin string, l *lab) (d time.Duration, err error) {
	procs := make([]*portalproc.Process, nodeCount)
	defer func() {
		for _, p := range procs {
			if p != nil {
				p.Stop()
			}
		}
	}()
	for i := 1; i <= nodeCount; i++ {
		var others []string
		for j := 1; j <= nodeCount; j++ {
			if j != i {
				others = append(others, nodeIP(j).String())
			}
		}
		procs[i-1] = &portalproc.Process{Bin: "nsenter"}
		err := procs[i-1].Start("--net="+l.nodes[i-1], "--", bin, "-name", nodeName(i),
			"-bind", nodeIP(i).String(), "-join", strings.Join(others, ","))
		if err != nil {
			return 0, err
		}
	}
	joined := func() bool {
		for i, p := range procs {
			out := p.Log.String()
			for j := 1; j <= nodeCount; j++ {
				if j == i+1 {
					continue
				}
				if _, ok := memberEvent(out, "join", nodeName(j)); !ok {
					return false
				}
			}
		}
		return true
	}
	if err := waitUntil(ctx, 30*time.Second, joined); err != nil {
		return 0, fmt.Errorf("memberlist nodes did not all join: %w\nnode-1:\n%s", err, portalproc.LastLines(procs[0].Log.String(), 10))
	}
	// Let the probes settle into their rhythm, as in a running cluster.
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(2 * time.Second):
	}
	t0 := time.Now()
	if err := l.setLink(1, false); err != nil {
		return 0, err
	}
	defer func() { _ = l.setLink(1, true) }()
	var last time.Time
	left := func() bool {
		last = time.Time{}
		for _, p := range procs[1:] {
			at, ok := memberEvent(p.Log.String(), "leave", nodeName(1))
			if !ok {
				return false
			}
			if at.After(last) {
				last = at
			}
		}
		return true
	}
	if err := waitUntil(ctx, 30*time.Second, left); err != nil {
		return 0, fmt.Errorf("node-2 and node-3 did not both declare node-1 dead: %w", err)
	}
	return last.Sub(t0), nil
}

// runBaseline measures rounds memberlist detections; it returns those it
// got and the first error.
func runBaseline(ctx context.Context, bin string, l *lab, rounds int) ([]time.Duration, error) {
	var out []time.Duration
	for k := 1; k <= rounds; k++ {
		d, err := memberlistRound(ctx, bin, l)
		if err != nil {
			return out, fmt.Errorf("memberlist round %d: %w", k, err)
		}
		fmt.Fprintf(os.Stderr, "memberlist round %d/%d: node-1 declared dead by both others %s after its link went down\n", k, rounds, d.Round(time.Millisecond))
		out = append(out, d)
	}
	return out, nil
}
