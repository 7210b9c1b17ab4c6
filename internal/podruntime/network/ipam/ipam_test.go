package ipam_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/portal-net/portal/internal/podruntime/network/ipam"
)

func cidr(t *testing.T, s string) *net.IPNet {
	t.Helper()
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func open(t *testing.T, dir, c string) *ipam.Store {
	t.Helper()
	s, err := ipam.Open(dir, cidr(t, c))
	if err != nil {
		t.Fatalf("Open(%s): %v", c, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func alloc(t *testing.T, s *ipam.Store, id string) string {
	t.Helper()
	ip, err := s.Allocate(id)
	if err != nil {
		t.Fatalf("Allocate(%s): %v", id, err)
	}
	return ip.String()
}

func TestAllocateSkipsReservedAndIsIdempotent(t *testing.T) {
	s := open(t, t.TempDir(), "10.244.1.0/29") // .2 .. .6 usable
	var got []string
	for i := range 5 {
		got = append(got, alloc(t, s, fmt.Sprintf("pod-%d", i)))
	}
	want := []string{"10.244.1.2", "10.244.1.3", "10.244.1.4", "10.244.1.5", "10.244.1.6"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("allocations = %v, want %v", got, want)
	}
	if ip := alloc(t, s, "pod-2"); ip != "10.244.1.4" {
		t.Errorf("second Allocate(pod-2) = %s, want 10.244.1.4", ip)
	}
	_, err := s.Allocate("pod-5")
	if !errors.Is(err, ipam.ErrExhausted) {
		t.Fatalf("Allocate when full: err = %v, want ErrExhausted", err)
	}
	if !strings.Contains(err.Error(), "10.244.1.0/29") {
		t.Errorf("exhausted error %q does not name the cidr", err)
	}
	if ip, ok := s.Get("pod-3"); !ok || ip.String() != "10.244.1.5" {
		t.Errorf("Get(pod-3) = %v, %v", ip, ok)
	}
	if _, ok := s.Get("nope"); ok {
		t.Errorf("Get(nope) found an address")
	}
}

func TestReleaseIsNotReusedAtOnce(t *testing.T) {
	s := open(t, t.TempDir(), "10.244.1.0/29")
	a := alloc(t, s, "a") // .2
	alloc(t, s, "b")      // .3
	if err := s.Release("a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Release("a"); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	if err := s.Release("unknown"); err != nil {
		t.Fatalf("Release(unknown): %v", err)
	}
	if c := alloc(t, s, "c"); c == a {
		t.Fatalf("just released %s handed out again at once", a)
	} else if c != "10.244.1.4" {
		t.Fatalf("c = %s, want 10.244.1.4 (round robin)", c)
	}
	alloc(t, s, "d") // .5
	alloc(t, s, "e") // .6
	// Wraps around to the freed .2.
	if f := alloc(t, s, "f"); f != a {
		t.Fatalf("f = %s, want the freed %s after wrap-around", f, a)
	}
}

func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	s1 := open(t, dir, "10.244.1.0/24")
	a := alloc(t, s1, "a")
	b := alloc(t, s1, "b")
	if err := s1.Release("b"); err != nil {
		t.Fatal(err)
	}
	s1.Close()

	s2 := open(t, dir, "10.244.1.0/24")
	if got := alloc(t, s2, "a"); got != a {
		t.Errorf("after restart a = %s, want %s", got, a)
	}
	c := alloc(t, s2, "c")
	if c == a || c == b {
		t.Errorf("after restart c = %s reuses a (%s) or just released b (%s)", c, a, b)
	}
	all, err := s2.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all["a"].String() != a || all["c"].String() != c {
		t.Errorf("List = %v", all)
	}
	// One file per address holding the id.
	content, err := os.ReadFile(filepath.Join(dir, a))
	if err != nil || strings.TrimSpace(string(content)) != "a" {
		t.Errorf("file %s = %q, %v", a, content, err)
	}
}

func TestCIDRChange(t *testing.T) {
	dir := t.TempDir()
	s1 := open(t, dir, "10.244.1.0/24")
	alloc(t, s1, "a")
	s1.Close()
	if _, err := ipam.Open(dir, cidr(t, "10.244.2.0/24")); !errors.Is(err, ipam.ErrCIDRChanged) {
		t.Fatalf("Open with other cidr: err = %v, want ErrCIDRChanged", err)
	}
	s1 = open(t, dir, "10.244.1.0/24")
	if err := s1.Release("a"); err != nil {
		t.Fatal(err)
	}
	s1.Close()
	s2 := open(t, dir, "10.244.2.0/24")
	if ip := alloc(t, s2, "b"); ip != "10.244.2.2" {
		t.Fatalf("after switching an empty dir: %s, want 10.244.2.2", ip)
	}
}

func TestOpenRejectsTinyAndBadInput(t *testing.T) {
	for _, c := range []string{"10.0.0.0/31", "10.0.0.1/32", "fd00::/127"} {
		if _, err := ipam.Open(t.TempDir(), cidr(t, c)); err == nil {
			t.Errorf("Open(%s) succeeded", c)
		}
	}
	s := open(t, t.TempDir(), "10.0.0.0/30")
	if ip := alloc(t, s, "only"); ip != "10.0.0.2" {
		t.Errorf("/30 gives %s, want 10.0.0.2", ip)
	}
	for _, id := range []string{"", "a\nb", " x"} {
		if _, err := s.Allocate(id); !errors.Is(err, ipam.ErrInvalidID) {
			t.Errorf("Allocate(%q): err = %v, want ErrInvalidID", id, err)
		}
	}
}

func TestIPv6(t *testing.T) {
	s := open(t, t.TempDir(), "fd00:10:244:1::/64")
	if ip := alloc(t, s, "a"); ip != "fd00:10:244:1::2" {
		t.Errorf("first v6 = %s", ip)
	}
}

// Two stores on one directory stand in for two processes: each has its
// own lock file description, so only flock keeps them apart.
func TestConcurrentStoresNeverShareAnAddress(t *testing.T) {
	dir := t.TempDir()
	stores := []*ipam.Store{open(t, dir, "10.244.0.0/24"), open(t, dir, "10.244.0.0/24")}
	const perStore = 2 * 60
	var wg sync.WaitGroup
	errs := make(chan error, 2*perStore)
	for si, s := range stores {
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perStore / 4 {
					id := fmt.Sprintf("s%d-w%d-%d", si, w, i)
					ip1, err := s.Allocate(id)
					if err != nil {
						errs <- err
						return
					}
					ip2, err := stores[1-si].Allocate(id)
					if err != nil {
						errs <- err
						return
					}
					if !ip1.Equal(ip2) {
						errs <- fmt.Errorf("%s: %s vs %s", id, ip1, ip2)
					}
					if i%3 == 0 {
						if err := s.Release(id); err != nil {
							errs <- err
						}
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	all, err := stores[0].List()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for id, ip := range all {
		if other, dup := seen[ip.String()]; dup {
			t.Errorf("%s held by %s and %s", ip, id, other)
		}
		seen[ip.String()] = id
	}
	if want := 2 * perStore * 2 / 3; len(all) != want {
		t.Errorf("%d allocations, want %d", len(all), want)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) > 0 {
		t.Errorf("temp files left: %v", names)
	}
}
