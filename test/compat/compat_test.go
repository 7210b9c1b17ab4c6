package compat

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portal-net/portal/internal/testutil/dnspeer"
	"github.com/portal-net/portal/internal/testutil/portalproc"
)

var (
	portalBin  = flag.String("portal", "", "portal binary (the test is skipped without it)")
	corednsBin = flag.String("coredns", "", "CoreDNS binary built from bench/tools/coredns (the test is skipped without it)")
	logDir     = flag.String("logs", "", "directory to keep the servers' logs in")
	dump       = flag.Bool("dump", false, "log every question with both replies")
)

func binPath(p string) (string, error) {
	if !strings.ContainsRune(p, '/') {
		return exec.LookPath(p)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(abs); err != nil {
		return "", err
	}
	return abs, nil
}

// TestCompatCoreDNS serves one cluster state with portal's DNS and with
// CoreDNS's kubernetes plugin and asks both the same questions: every
// difference fails the test unless the allow-list explains it.
func TestCompatCoreDNS(t *testing.T) {
	if *portalBin == "" || *corednsBin == "" {
		t.Skip("differential DNS test needs -portal and -coredns binaries; run `make test-compat`")
	}
	portal, err := binPath(*portalBin)
	if err != nil {
		t.Fatalf("-portal: %v", err)
	}
	coredns, err := binPath(*corednsBin)
	if err != nil {
		t.Fatalf("-coredns: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tmp := t.TempDir()

	ports, err := dnspeer.FreePorts(5)
	if err != nil {
		t.Fatal(err)
	}
	api := &portalproc.Server{Process: portalproc.Process{Bin: portal}, Dir: filepath.Join(tmp, "server"),
		Port: ports[0], Etcd: ports[1], Peer: ports[2]}
	t.Cleanup(api.Stop)
	if _, err := api.Start(ctx, 90*time.Second); err != nil {
		t.Fatalf("portal server: %v", err)
	}
	kc, err := api.Client(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	svcs, pods := clusterState()
	if err := writeState(ctx, kc, svcs, pods); err != nil {
		t.Fatal(err)
	}

	up, err := startUpstream()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Stop)

	// No cache: answers must reflect the kubernetes plugin, not what an
	// earlier question cached.
	conf := filepath.Join(tmp, "Corefile")
	if err := os.WriteFile(conf, []byte(dnspeer.Corefile(api.Kubeconfig(), ports[4], up.Addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	ours := &portalproc.Process{Bin: portal}
	theirs := &portalproc.Process{Bin: coredns}
	oursAddr, theirsAddr := dnspeer.HostPort(ports[3]), dnspeer.HostPort(ports[4])
	for _, s := range []struct {
		name string
		p    *portalproc.Process
		args []string
	}{
		{"portal-dns", ours, dnspeer.PortalArgs(api.Kubeconfig(), oursAddr, up.Addr, "", "compat", filepath.Join(tmp, "agent"))},
		{"coredns", theirs, []string{"-conf", conf}},
	} {
		if err := s.p.Start(s.args...); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			s.p.Stop()
			if *logDir != "" {
				_ = os.MkdirAll(*logDir, 0o755)
				_ = os.WriteFile(filepath.Join(*logDir, s.name+".log"), []byte(s.p.Log.String()), 0o644)
			}
		})
	}
	// Everything was written before either server started, so the first
	// answer from the last service written means its informers have listed
	// the whole state.
	var probe *svcSpec
	for _, s := range svcs {
		if s.clusterIP != "" {
			probe = s
		}
	}
	for _, s := range []struct {
		name, addr string
		p          *portalproc.Process
	}{{"portal", oursAddr, ours}, {"CoreDNS", theirsAddr, theirs}} {
		if err := waitAnswers(ctx, s.p, s.addr, svcName(probe.ns, probe.name), netip.MustParseAddr(probe.clusterIP), 60*time.Second); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}

	qs := queries(svcs, pods)
	var matched, allowed int
	var failures []string
	reasons := map[string]int{}
	for _, q := range qs {
		o, err := exchange(ctx, oursAddr, q.name, q.qtype)
		if err != nil {
			failures = append(failures, fmt.Sprintf("%s: portal: %v\n", q, err))
			continue
		}
		c, err := exchange(ctx, theirsAddr, q.name, q.qtype)
		if err != nil {
			failures = append(failures, fmt.Sprintf("%s: CoreDNS: %v\n", q, err))
			continue
		}
		or, cr := newReply(o), newReply(c)
		if *dump {
			t.Logf("%s\n    ours:    %s\n    CoreDNS: %s", q, or, cr)
		}
		if or.equal(cr) {
			matched++
			continue
		}
		if a := allowedBy(q, or, cr); a != nil {
			allowed++
			reasons[a.name]++
			t.Logf("allowed (%s): %s", a.name, diff(q, or, cr))
			continue
		}
		failures = append(failures, diff(q, or, cr)+fmt.Sprintf("    ours:    %s\n    CoreDNS: %s\n", or, cr))
	}
	t.Logf("%d queries: %d match, %d differ as allowed %v, %d differ otherwise", len(qs), matched, allowed, reasons, len(failures))
	for _, d := range allowList {
		if reasons[d.name] > 0 {
			t.Logf("allowed %d× %q: %s", reasons[d.name], d.name, d.reason)
		}
	}
	for _, f := range failures {
		t.Error("\n" + f)
	}
}
