package ipam_test

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/portal-net/portal/internal/podruntime/network/ipam"
)

const (
	envHelperDir  = "PORTAL_IPAM_HELPER_DIR"
	envHelperName = "PORTAL_IPAM_HELPER_NAME"
)

// TestHelperAllocate is not a test: it is the child of
// TestProcessesNeverShareAnAddress.
func TestHelperAllocate(t *testing.T) {
	dir := os.Getenv(envHelperDir)
	if dir == "" {
		t.Skip("helper process only")
	}
	s, err := ipam.Open(dir, cidr(t, "10.244.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 50 {
		if _, err := s.Allocate(os.Getenv(envHelperName) + "-" + strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestProcessesNeverShareAnAddress(t *testing.T) {
	dir := t.TempDir()
	var cmds []*exec.Cmd
	for i := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperAllocate$", "-test.count=1")
		cmd.Env = append(os.Environ(), envHelperDir+"="+dir, fmt.Sprintf("%s=p%d", envHelperName, i))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper: %v", err)
		}
	}
	s := open(t, dir, "10.244.0.0/24")
	all, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 200 {
		t.Errorf("%d allocations, want 200", len(all))
	}
	owner := map[string]string{}
	for id, ip := range all {
		if prev, dup := owner[ip.String()]; dup {
			t.Errorf("%s held by %s and %s", ip, prev, id)
		}
		owner[ip.String()] = id
	}
}
