package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

func TestPodTreeSplitsSupervisorsAndContainers(t *testing.T) {
	const pods = "/tmp/x/root/pods"
	procs := []proc{
		{pid: 1, ppid: 0, cmdline: []string{"bench"}},
		{pid: 10, ppid: 1, cmdline: []string{"portal", "agent", "--root-dir", "/tmp/x/root"}},
		{pid: 20, ppid: 1, cmdline: []string{"/bin/portal-shim", "shim", "--dir", pods + "/uid-a", "--hostname", "a"}},
		{pid: 21, ppid: 20, cmdline: []string{"/bin/portal-shim", "agnhost", "netexec"}},
		{pid: 22, ppid: 21, cmdline: []string{"sh", "-c", "sleep 1"}},
		{pid: 30, ppid: 1, cmdline: []string{"/bin/portal-shim", "shim", "--dir", pods + "/uid-b"}},
		{pid: 31, ppid: 30, cmdline: []string{"/bin/portal-shim", "pause"}},
		// Another agent's pod and an unrelated process are not ours.
		{pid: 40, ppid: 1, cmdline: []string{"/bin/portal-shim", "shim", "--dir", "/tmp/x/root/podsother/uid-c"}},
		{pid: 41, ppid: 40, cmdline: []string{"/bin/portal-shim", "agnhost", "netexec"}},
		{pid: 50, ppid: 1, cmdline: []string{"vim", pods + "/uid-a"}},
	}
	sups, ctrs := podTree(procs, pods)
	slices.Sort(sups)
	slices.Sort(ctrs)
	if !slices.Equal(sups, []int{20, 30}) || !slices.Equal(ctrs, []int{21, 22, 31}) {
		t.Fatalf("supervisors %v containers %v; want [20 30] [21 22 31]", sups, ctrs)
	}
}

func TestParseProcFiles(t *testing.T) {
	if ppid, err := parseStatPPID("4242 (portal (x) y) S 17 4242 4242 0 -1"); err != nil || ppid != 17 {
		t.Errorf("ppid = %d, %v; want 17", ppid, err)
	}
	if _, err := parseStatPPID("garbage"); err == nil {
		t.Error("malformed stat accepted")
	}
	rollup := "55d0-7ffd ---p 00000000 00:00 0 [rollup]\nRss:                9040 kB\nPss:                1712 kB\nPss_Anon:  1000 kB\n"
	if m, err := parseSmapsRollup(rollup); err != nil || m != (mem{rss: 9040, pss: 1712}) {
		t.Errorf("smaps_rollup = %+v, %v", m, err)
	}
	if _, err := parseSmapsRollup("Rss: 1 kB\n"); err == nil {
		t.Error("rollup without Pss accepted")
	}
}

func TestCountMountsUnderRunDir(t *testing.T) {
	mi := strings.Join([]string{
		"36 25 0:4 net:[4026532] /tmp/b/run/netns/uid-a rw shared:5 - nsfs nsfs rw",
		"37 25 0:4 net:[4026533] /tmp/b/run/netns/uid\\040b rw - nsfs nsfs rw",
		"38 25 0:30 / /tmp/b/run rw - tmpfs tmpfs rw",
		"39 25 0:31 / /tmp/b/runner rw - tmpfs tmpfs rw",
		"40 25 8:1 /tmp/b/run /mnt rw - ext4 /dev/sda1 rw",
		"short line",
	}, "\n")
	n, err := countMounts(strings.NewReader(mi), "/tmp/b/run")
	if err != nil || n != 3 {
		t.Fatalf("countMounts = %d, %v; want 3 (two netns files and the dir itself)", n, err)
	}
}

func TestCountFilesSkipsIPAMBookkeeping(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ipam")
	if n, err := countFiles(dir, func(n string) bool { return !ipamBookkeeping[n] }); err != nil || n != 0 {
		t.Fatalf("missing dir: %d, %v", n, err)
	}
	for _, f := range []string{"lock", "cidr", "last_reserved_ip", "10.42.0.2", "sub/10.42.0.3"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("uid"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := countFiles(dir, func(n string) bool { return !ipamBookkeeping[n] }); err != nil || n != 2 {
		t.Fatalf("countFiles = %d, %v; want 2 allocations", n, err)
	}
}

func TestLeaksString(t *testing.T) {
	if got := (leaks{}).String(); got != "0 leaked" {
		t.Errorf("no leaks: %q", got)
	}
	if got := (leaks{netns: 2, mounts: 2, procs: 1}).String(); got != "2 netns files, 1 processes, 2 mounts" {
		t.Errorf("leaks: %q", got)
	}
}

func podEvent(typ watch.EventType, name string, phase corev1.PodPhase, ready bool) watch.Event {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.PodStatus{Phase: phase}}
	if ready {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	}
	return watch.Event{Type: typ, Object: p}
}

func TestTrackerStampsFirstEventOfEachMilestone(t *testing.T) {
	tr := newTracker()
	ctx := context.Background()
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	// A waiter registered before any event is woken by it.
	got := make(chan time.Time, 1)
	go func() { ts, _ := tr.wait(ctx, "a", running, 10*time.Second); got <- ts }()

	tr.observe(podEvent(watch.Added, "a", corev1.PodPending, false), at(0))
	tr.observe(podEvent(watch.Modified, "a", corev1.PodRunning, false), at(100))
	tr.observe(podEvent(watch.Modified, "a", corev1.PodRunning, true), at(900))
	tr.observe(podEvent(watch.Modified, "a", corev1.PodRunning, true), at(950))
	tr.observe(watch.Event{Type: watch.Bookmark, Object: &corev1.Namespace{}}, at(960))
	tr.observe(podEvent(watch.Deleted, "a", corev1.PodRunning, true), at(1500))

	if ts := <-got; !ts.Equal(at(100)) {
		t.Errorf("Running at %v, want %v", ts, at(100))
	}
	for m, want := range map[milestone]time.Time{ready: at(900), gone: at(1500)} {
		if ts, err := tr.wait(ctx, "a", m, time.Second); err != nil || !ts.Equal(want) {
			t.Errorf("%s at %v, %v; want %v", m, ts, err, want)
		}
	}
	// A pod never Ready times out rather than blocking the run.
	tr.observe(podEvent(watch.Added, "b", corev1.PodRunning, false), at(0))
	if _, err := tr.wait(ctx, "b", ready, 20*time.Millisecond); err == nil || !strings.Contains(err.Error(), "not Ready") {
		t.Errorf("wait for a pod never Ready: %v", err)
	}
	tr.forget("a")
	if _, err := tr.wait(ctx, "a", gone, 10*time.Millisecond); err == nil {
		t.Error("forgotten pod still remembered")
	}
}

func TestBenchPodIsProbedNetexec(t *testing.T) {
	p := benchPod("x")
	c := p.Spec.Containers[0]
	if p.Labels["app"] != benchLabel || c.Image != agnhostImage || !slices.Equal(c.Args, []string{"netexec", "--http-port=8080"}) {
		t.Fatalf("pod %+v", p)
	}
	if pr := c.ReadinessProbe; pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Path != "/healthz" || pr.HTTPGet.Port.IntValue() != 8080 || pr.PeriodSeconds != 1 {
		t.Fatalf("readiness probe %+v", c.ReadinessProbe)
	}
}
