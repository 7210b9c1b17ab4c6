package sysctl

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// newTree lays out files under a temporary root as /proc/sys would hold
// them and returns an FS on it.
func newTree(t *testing.T, files map[string]string) *FS {
	t.Helper()
	root := t.TempDir()
	for rel, v := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &FS{Root: root}
}

// Both implementations must behave alike; each case runs against both.
func impls(t *testing.T) map[string]Interface {
	files := map[string]string{
		"net/ipv4/ip_forward":                       "0\n",
		"net/ipv4/conf/all/route_localnet":          "1\n",
		"net/ipv4/conf/eth0.100/rp_filter":          "2\n",
		"net/netfilter/nf_conntrack_tcp_be_liberal": "0\n",
	}
	vals := map[string]string{}
	for k, v := range files {
		vals[k] = v[:len(v)-1]
	}
	return map[string]Interface{"fs": newTree(t, files), "fake": NewFake(vals)}
}

func TestGetSet(t *testing.T) {
	for name, s := range impls(t) {
		t.Run(name, func(t *testing.T) {
			if v, err := s.Get(IPForward); err != nil || v != "0" {
				t.Fatalf("Get(%s) = %q, %v; want \"0\"", IPForward, v, err)
			}
			if err := SetInt(s, IPForward, 1); err != nil {
				t.Fatalf("SetInt: %v", err)
			}
			if n, err := GetInt(s, IPForward); err != nil || n != 1 {
				t.Fatalf("GetInt after set = %d, %v; want 1", n, err)
			}
			// A VLAN interface name holds a dot: the slash form reaches it.
			if v, err := s.Get("net/ipv4/conf/eth0.100/rp_filter"); err != nil || v != "2" {
				t.Fatalf("slash name = %q, %v; want \"2\"", v, err)
			}
		})
	}
}

func TestEnsure(t *testing.T) {
	for name, s := range impls(t) {
		t.Run(name, func(t *testing.T) {
			wrote, err := Ensure(s, RouteLocalnet, "0")
			if err != nil || !wrote {
				t.Fatalf("Ensure changed value: wrote=%v err=%v; want true, nil", wrote, err)
			}
			wrote, err = Ensure(s, RouteLocalnet, "0")
			if err != nil || wrote {
				t.Fatalf("Ensure same value: wrote=%v err=%v; want false, nil", wrote, err)
			}
			if v, _ := s.Get(RouteLocalnet); v != "0" {
				t.Fatalf("route_localnet = %q, want 0", v)
			}
		})
	}
	f := impls(t)["fake"].(*Fake)
	Ensure(f, ConntrackTCPBeLiberal, "1")
	Ensure(f, ConntrackTCPBeLiberal, "1")
	if got := f.Sets(); len(got) != 1 || got[0] != (Write{ConntrackTCPBeLiberal, "1"}) {
		t.Fatalf("fake recorded %v, want one write of %s=1", got, ConntrackTCPBeLiberal)
	}
}

func TestErrors(t *testing.T) {
	for name, s := range impls(t) {
		t.Run(name, func(t *testing.T) {
			// br_netfilter not loaded: the caller must be able to tell.
			if _, err := s.Get(BridgeNFCallIPTables); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Get missing = %v, want fs.ErrNotExist", err)
			}
			if err := s.Set(BridgeNFCallIPTables, "1"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Set missing = %v, want fs.ErrNotExist", err)
			}
			for _, bad := range []string{"", "net/../../etc/passwd", "/etc/passwd", "net..ipv4", "net/ipv4/"} {
				if _, err := s.Get(bad); !errors.Is(err, ErrInvalidName) {
					t.Errorf("Get(%q) = %v, want ErrInvalidName", bad, err)
				}
			}
			for _, bad := range []string{"", "1\n0"} {
				if err := s.Set(IPForward, bad); !errors.Is(err, ErrInvalidValue) {
					t.Errorf("Set(%q) = %v, want ErrInvalidValue", bad, err)
				}
			}
			if v, _ := s.Get(IPForward); v != "0" {
				t.Errorf("rejected writes changed ip_forward to %q", v)
			}
		})
	}
}

func TestGetIntNotInteger(t *testing.T) {
	s := NewFake(map[string]string{"net.ipv4.tcp_rmem": "4096\t131072\t6291456"})
	if _, err := GetInt(s, "net.ipv4.tcp_rmem"); err == nil {
		t.Fatal("GetInt of a vector = nil error")
	}
}

// Reading the running kernel is harmless and proves the dotted name maps
// onto the real tree.
func TestProcSysRead(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc/sys is linux")
	}
	if v, err := New().Get("kernel.ostype"); err != nil || v != "Linux" {
		t.Fatalf("kernel.ostype = %q, %v; want Linux", v, err)
	}
}
