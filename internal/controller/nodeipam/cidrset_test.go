package nodeipam

import (
	"errors"
	"net"
	"testing"
)

func mustCIDR(t *testing.T, s string) *net.IPNet {
	t.Helper()
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCIDRSetAllocate(t *testing.T) {
	tests := []struct {
		name    string
		cluster string
		mask    int
		occupy  []string
		release []string // released after occupy, before allocating
		want    []string // successive AllocateNext results; "full" means ErrRangeFull
	}{
		{name: "ipv4 in order", cluster: "10.42.0.0/16", mask: 24,
			want: []string{"10.42.0.0/24", "10.42.1.0/24", "10.42.2.0/24"}},
		{name: "occupied blocks are skipped", cluster: "10.42.0.0/16", mask: 24,
			occupy: []string{"10.42.0.0/24", "10.42.2.0/24"},
			want:   []string{"10.42.1.0/24", "10.42.3.0/24"}},
		{name: "hand-set CIDR larger than a block covers several", cluster: "10.42.0.0/16", mask: 24,
			occupy: []string{"10.42.0.0/23"},
			want:   []string{"10.42.2.0/24"}},
		{name: "range fills up", cluster: "10.0.0.0/30", mask: 31,
			want: []string{"10.0.0.0/31", "10.0.0.2/31", "full"}},
		{name: "full range stays full after occupying twice", cluster: "10.0.0.0/31", mask: 31,
			occupy: []string{"10.0.0.0/31", "10.0.0.0/31"},
			want:   []string{"full"}},
		{name: "released block is reusable", cluster: "10.0.0.0/30", mask: 31,
			occupy: []string{"10.0.0.0/31", "10.0.0.2/31"}, release: []string{"10.0.0.2/31"},
			want: []string{"10.0.0.2/31", "full"}},
		{name: "cluster address with host bits is masked", cluster: "10.42.7.9/16", mask: 24,
			want: []string{"10.42.0.0/24"}},
		{name: "ipv6", cluster: "fd00:42::/56", mask: 64,
			occupy: []string{"fd00:42::/64"},
			want:   []string{"fd00:42:0:1::/64", "fd00:42:0:2::/64"}},
		{name: "whole cluster as one block", cluster: "10.1.0.0/24", mask: 24,
			want: []string{"10.1.0.0/24", "full"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewCIDRSet(mustCIDR(t, tt.cluster), tt.mask)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tt.occupy {
				if err := s.Occupy(mustCIDR(t, c)); err != nil {
					t.Fatalf("occupy %s: %v", c, err)
				}
			}
			for _, c := range tt.release {
				if err := s.Release(mustCIDR(t, c)); err != nil {
					t.Fatalf("release %s: %v", c, err)
				}
			}
			for i, want := range tt.want {
				got, err := s.AllocateNext()
				if want == "full" {
					if !errors.Is(err, ErrRangeFull) {
						t.Fatalf("allocation %d: got %v, %v; want ErrRangeFull", i, got, err)
					}
					continue
				}
				if err != nil || got.String() != want {
					t.Fatalf("allocation %d: got %v, %v; want %s", i, got, err, want)
				}
			}
		})
	}
}

func TestCIDRSetRoundRobin(t *testing.T) {
	s, err := NewCIDRSet(mustCIDR(t, "10.0.0.0/29"), 31) // four blocks
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.AllocateNext()
	if err := s.Release(a); err != nil {
		t.Fatal(err)
	}
	// The freed block comes back only after the untouched ones.
	var got []string
	for range 4 {
		n, err := s.AllocateNext()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, n.String())
	}
	want := []string{"10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/31", "10.0.0.0/31"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("allocations = %v, want %v", got, want)
		}
	}
	if s.Free() != 0 {
		t.Fatalf("free = %d, want 0", s.Free())
	}
}

func TestCIDRSetErrors(t *testing.T) {
	tests := []struct {
		name    string
		cluster string
		mask    int
		occupy  string
		wantNew bool // NewCIDRSet fails
	}{
		{name: "mask shorter than cluster prefix", cluster: "10.42.0.0/16", mask: 8, wantNew: true},
		{name: "mask longer than address", cluster: "10.42.0.0/16", mask: 33, wantNew: true},
		{name: "too many blocks", cluster: "10.0.0.0/8", mask: 28, wantNew: true},
		{name: "occupy outside cluster", cluster: "10.42.0.0/16", mask: 24, occupy: "10.43.0.0/24"},
		{name: "occupy other family", cluster: "10.42.0.0/16", mask: 24, occupy: "fd00::/64"},
		{name: "occupy wider than cluster", cluster: "10.42.0.0/16", mask: 24, occupy: "10.0.0.0/8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewCIDRSet(mustCIDR(t, tt.cluster), tt.mask)
			if tt.wantNew {
				if err == nil {
					t.Fatal("NewCIDRSet succeeded, want error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Occupy(mustCIDR(t, tt.occupy)); !errors.Is(err, ErrOutOfRange) {
				t.Fatalf("occupy %s: %v, want ErrOutOfRange", tt.occupy, err)
			}
		})
	}
}
