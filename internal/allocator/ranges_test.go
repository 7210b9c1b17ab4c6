package allocator

import (
	"errors"
	"math/rand/v2"
	"net"
	"testing"
)

func mustIPRange(t *testing.T, cidr string) *IPRange {
	t.Helper()
	r, err := ParseIPRange(cidr)
	if err != nil {
		t.Fatalf("ParseIPRange(%q): %v", cidr, err)
	}
	return r
}

func TestIPRange(t *testing.T) {
	tests := []struct {
		cidr       string
		size       uint64
		first      string // ReservedIP(1)
		dns        string // ReservedIP(10)
		last       string // highest allocatable
		notAllowed []string
	}{
		{cidr: "10.0.0.0/24", size: 254, first: "10.0.0.1", dns: "10.0.0.10", last: "10.0.0.254",
			notAllowed: []string{"10.0.0.0", "10.0.0.255", "10.0.1.1", "fd00::1"}},
		{cidr: "10.96.0.0/12", size: 1<<20 - 2, first: "10.96.0.1", dns: "10.96.0.10", last: "10.111.255.254",
			notAllowed: []string{"10.96.0.0", "10.111.255.255", "10.112.0.1"}},
		{cidr: "10.0.0.0/29", size: 6, first: "10.0.0.1", dns: "", last: "10.0.0.6",
			notAllowed: []string{"10.0.0.7", "10.0.0.10"}},
		// IPv6 has no broadcast: the last address is allocatable.
		{cidr: "fd00:10::/112", size: 65535, first: "fd00:10::1", dns: "fd00:10::a", last: "fd00:10::ffff",
			notAllowed: []string{"fd00:10::", "fd00:10::1:0", "10.0.0.1"}},
		// Host bits in the input are masked away; offsets count from the
		// network address 10.0.0.76.
		{cidr: "10.0.0.77/30", size: 2, first: "10.0.0.77", dns: "", last: "10.0.0.78"},
	}
	for _, tt := range tests {
		t.Run(tt.cidr, func(t *testing.T) {
			_, n, _ := net.ParseCIDR(tt.cidr)
			r, err := NewIPRange(n)
			if err != nil {
				t.Fatal(err)
			}
			if r.Size() != tt.size {
				t.Errorf("Size() = %d, want %d", r.Size(), tt.size)
			}
			if got := ipString(r.ReservedIP(1)); got != tt.first {
				t.Errorf("ReservedIP(1) = %s, want %s", got, tt.first)
			}
			if got := ipString(r.ReservedIP(10)); got != tt.dns {
				t.Errorf("ReservedIP(10) = %s, want %q", got, tt.dns)
			}
			if got := ipString(r.IP(r.usable.hi - 1)); got != tt.last {
				t.Errorf("last = %s, want %s", got, tt.last)
			}
			for _, s := range []string{tt.first, tt.last} {
				ip := net.ParseIP(s)
				off, ok := r.Offset(ip)
				if !ok || !r.IP(off).Equal(ip) {
					t.Errorf("Offset(%s) = %d,%v; does not round-trip", s, off, ok)
				}
			}
			for _, s := range tt.notAllowed {
				if r.Contains(net.ParseIP(s)) {
					t.Errorf("Contains(%s) = true, want false", s)
				}
			}
		})
	}
}

func ipString(ip net.IP) string {
	if ip == nil {
		return ""
	}
	return ip.String()
}

func TestNewIPRangeRejects(t *testing.T) {
	for _, cidr := range []string{"10.0.0.1/32", "fd00::1/128"} {
		if _, err := ParseIPRange(cidr); err == nil {
			t.Errorf("ParseIPRange(%q) succeeded, want error", cidr)
		}
	}
}

func TestIPv6WideRangeIsClamped(t *testing.T) {
	r := mustIPRange(t, "fd00::/64")
	if r.Size() != maxOffsets-1 {
		t.Fatalf("Size() = %d, want 2^63-1", r.Size())
	}
	if got := r.IP(maxOffsets - 1).String(); got != "fd00::7fff:ffff:ffff:ffff" {
		t.Fatalf("last IP = %s", got)
	}
	off, ok := r.sel.pick(rand.Uint64N, func(uint64) bool { return false }, 0)
	if !ok || off == 0 {
		t.Fatalf("pick = %d,%v", off, ok)
	}
}

// drain picks at random until the selector reports the range full.
func drain(sel selector) []uint64 {
	taken := map[uint64]bool{}
	var order []uint64
	for {
		off, ok := sel.pick(rand.Uint64N, func(o uint64) bool { return taken[o] }, len(taken))
		if !ok {
			return order
		}
		if taken[off] {
			panic("picked a taken offset")
		}
		taken[off] = true
		order = append(order, off)
	}
}

func TestRandomSelectionIPv4(t *testing.T) {
	r := mustIPRange(t, "10.0.0.0/24")
	order := drain(r.sel)
	// 254 usable minus the kubernetes (1) and DNS (10) offsets.
	if len(order) != 252 {
		t.Fatalf("random picks = %d, want 252", len(order))
	}
	// Lower band of a /24 is 256/16 = 16 addresses: 10.0.0.1-10.0.0.16.
	for i, off := range order {
		if off == KubernetesServiceOffset || off == DNSServiceOffset {
			t.Fatalf("random pick returned reserved offset %d", off)
		}
		upper := off > 16
		if i < 238 && !upper {
			t.Fatalf("pick %d = %s from the lower band while the upper band had room", i, r.IP(off))
		}
		if i >= 238 && upper {
			t.Fatalf("pick %d = %s from the upper band after it was full", i, r.IP(off))
		}
	}
}

func TestRandomSelectionSmallRangeHasNoBand(t *testing.T) {
	r := mustIPRange(t, "10.0.0.0/27") // 30 usable < 2*16: one band
	if len(r.sel.bands) != 1 {
		t.Fatalf("bands = %v, want one", r.sel.bands)
	}
	order := drain(r.sel)
	if len(order) != 28 {
		t.Fatalf("random picks = %d, want 28 (30 minus 2 reserved)", len(order))
	}
}

func TestRandomSelectionIPv6(t *testing.T) {
	r := mustIPRange(t, "fd00::/112")
	// Lower band clamps at 256 addresses.
	if got := r.sel.bands[0]; got.lo != 257 || got.hi != 65536 {
		t.Fatalf("upper band = %+v, want [257, 65536)", got)
	}
	first := func(uint64) uint64 { return 0 }
	off, ok := r.sel.pick(first, func(uint64) bool { return false }, 0)
	if !ok || r.IP(off).String() != "fd00::101" {
		t.Fatalf("pick with rand=0 = %v, want fd00::101", r.IP(off))
	}
}

func TestPickWrapsWithinBand(t *testing.T) {
	r := mustIPRange(t, "10.0.0.0/24")
	last := func(n uint64) uint64 { return n - 1 }
	taken := map[uint64]bool{254: true}
	off, ok := r.sel.pick(last, func(o uint64) bool { return taken[o] }, len(taken))
	if !ok || off != 17 {
		t.Fatalf("pick = %d, want wrap to 17", off)
	}
}

func TestParsePortRange(t *testing.T) {
	tests := []struct {
		in         string
		base, size int
		str        string
		wantErr    bool
	}{
		{in: "30000-32767", base: 30000, size: 2768, str: "30000-32767"},
		{in: "30000+2768", base: 30000, size: 2768, str: "30000-32767"},
		{in: " 30000 - 30009 ", base: 30000, size: 10, str: "30000-30009"},
		{in: "30000", base: 30000, size: 1, str: "30000-30000"},
		{in: "", wantErr: true},
		{in: "a-b", wantErr: true},
		{in: "32767-30000", wantErr: true},
		{in: "0-10", wantErr: true},
		{in: "65000+1000", wantErr: true},
		{in: "30000+0", wantErr: true},
	}
	for _, tt := range tests {
		r, err := ParsePortRange(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("ParsePortRange(%q) = %v, want error", tt.in, r)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePortRange(%q): %v", tt.in, err)
			continue
		}
		if r.Base != tt.base || r.Size != tt.size || r.String() != tt.str {
			t.Errorf("ParsePortRange(%q) = %d+%d %q, want %d+%d %q", tt.in, r.Base, r.Size, r, tt.base, tt.size, tt.str)
		}
	}
}

func TestRandomSelectionPorts(t *testing.T) {
	r, _ := ParsePortRange("30000-32767")
	order := drain(r.sel)
	if len(order) != 2768 {
		t.Fatalf("random picks = %d, want 2768", len(order))
	}
	// Lower band: 2768/32 = 86 ports, 30000-30085.
	for i, off := range order {
		upper := r.Port(off) >= 30086
		if (i < 2768-86) != upper {
			t.Fatalf("pick %d = %d in the wrong band", i, r.Port(off))
		}
	}
}

func TestErrorMessages(t *testing.T) {
	ipErr := ipNotInRange("10.0.171.239", "10.0.0.0/24")
	portErr := portNotInRange("30000-32767")
	tests := []struct {
		err   error
		class error
		msg   string
	}{
		{ipErr, ErrNotInRange, "the provided IP (10.0.171.239) is not in the valid range. The range of valid IPs is 10.0.0.0/24"},
		{portErr, ErrNotInRange, "provided port is not in the valid range. The range of valid ports is 30000-32767"},
		{errIPAllocated, ErrAllocated, "provided IP is already allocated"},
		{errPortAllocated, ErrAllocated, "provided port is already allocated"},
		{ErrFull, ErrFull, "range is full"},
	}
	for _, tt := range tests {
		if tt.err.Error() != tt.msg {
			t.Errorf("message = %q, want %q", tt.err, tt.msg)
		}
		if !errors.Is(tt.err, tt.class) {
			t.Errorf("errors.Is(%q, %v) = false", tt.err, tt.class)
		}
	}
	if errors.Is(ipErr, ErrAllocated) {
		t.Errorf("not-in-range error matches ErrAllocated")
	}
}
