package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// memory measures, with the latency step's last pods running, the memory of
// their supervisors and containers and what the agent grew by, per pod.
func (b *bench) memory(ctx context.Context) error {
	// Let the pods settle past their first probes and the agent its
	// status writes.
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2 * time.Second):
	}
	procs, err := readProcs()
	if err != nil {
		return err
	}
	sups, ctrs := podTree(procs, filepath.Join(b.agent.rootDir, "pods"))
	if len(sups) != b.o.pods {
		return fmt.Errorf("%d pod supervisors running, want %d", len(sups), b.o.pods)
	}
	sup, ctr := sumMem(sups), sumMem(ctrs)
	agentRSS, err := b.agent.RSSMB()
	if err != nil {
		return err
	}
	agentDelta := agentRSS - b.agentRSSBefore

	bp, _, err := startBare(ctx, b.shim, b.o.limit)
	if err != nil {
		return err
	}
	// As long as the pods had to settle.
	time.Sleep(2 * time.Second)
	bareMem, err := readMem(bp.pid())
	bp.Stop()
	if err != nil {
		return err
	}

	n := float64(b.o.pods)
	perPod := func(kb int64) float64 { return float64(kb) / 1024 / n }
	total := perPod(sup.rss) + perPod(ctr.rss) + agentDelta/n
	b.out.Add(fmt.Sprintf("memory per pod, %d pods running (RSS)", b.o.pods),
		fmt.Sprintf("%s: supervisor %s + container %s + agent growth %s", mb(total), mb(perPod(sup.rss)), mb(perPod(ctr.rss)), mb(agentDelta/n)),
		fmt.Sprintf("one bare agnhost netexec: %s", mb(float64(bareMem.rss)/1024)), "")
	b.out.Add(fmt.Sprintf("memory per pod, %d pods running (PSS: shared pages divided among sharers)", b.o.pods),
		fmt.Sprintf("%s: supervisor %s + container %s", mb(perPod(sup.pss)+perPod(ctr.pss)), mb(perPod(sup.pss)), mb(perPod(ctr.pss))),
		fmt.Sprintf("one bare agnhost netexec: %s", mb(float64(bareMem.pss)/1024)), "")
	b.out.Add("agent RSS before the pods / with them", fmt.Sprintf("%s / %s", mb(b.agentRSSBefore), mb(agentRSS)), "", "")

	fmt.Fprintln(b.out.Live, "deleting the latency pods")
	return b.deletePods(ctx)
}

// deletePods deletes the latency step's pods and forgets them, so that
// the next pass can use the names again.
func (b *bench) deletePods(ctx context.Context) error {
	if err := b.deleteAll(ctx, b.o.limit); err != nil {
		return err
	}
	for i := range b.o.pods {
		b.tracker.forget(latencyPod(i))
	}
	return nil
}

// mb formats mebibytes with one decimal: a pod takes a few.
func mb(v float64) string { return fmt.Sprintf("%.1f MB", v) }
