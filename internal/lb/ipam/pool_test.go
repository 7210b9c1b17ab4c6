package ipam

import (
	"strings"
	"testing"
)

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		in, first, last, str string
	}{
		{"10.0.0.0/24", "10.0.0.0", "10.0.0.255", "10.0.0.0/24"},
		{" 10.0.0.10-10.0.0.20 ", "10.0.0.10", "10.0.0.20", "10.0.0.10-10.0.0.20"},
		{"10.0.0.7", "10.0.0.7", "10.0.0.7", "10.0.0.7"},
		{"fd00::/120", "fd00::", "fd00::ff", "fd00::/120"},
		{"fd00::10-fd00::20", "fd00::10", "fd00::20", "fd00::10-fd00::20"},
		{"::ffff:10.0.0.1-::ffff:10.0.0.3", "10.0.0.1", "10.0.0.3", "10.0.0.1-10.0.0.3"},
	} {
		r, err := ParseRange(tc.in)
		if err != nil {
			t.Errorf("ParseRange(%q) = %v", tc.in, err)
			continue
		}
		if r.First.String() != tc.first || r.Last.String() != tc.last || r.String() != tc.str {
			t.Errorf("ParseRange(%q) = %s..%s %q, want %s..%s %q", tc.in, r.First, r.Last, r, tc.first, tc.last, tc.str)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"10.0.0.0/33", `"10.0.0.0/33": not a CIDR`},
		{"10.0.0.5/24", "host bits set, did you mean 10.0.0.0/24"},
		{"10.0.0.20-10.0.0.10", "10.0.0.20 is after 10.0.0.10"},
		{"10.0.0.1-fd00::1", "different IP families"},
		{"10.0.0.1-", `"10.0.0.1-": want first-last`},
		{"pool", `"pool": want a CIDR`},
		{"fe80::1%eth0", "fe80::1%eth0"},
	} {
		_, err := ParseRange(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseRange(%q) = %v, want error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestNetworkAndBroadcastHeldBack(t *testing.T) {
	for _, tc := range []struct {
		name     string
		p        Pool
		wantAddr []string // addresses handed out in order until exhaustion
	}{
		{"v4 /30 skips network and broadcast", pool(t, "a", "10.0.0.0/30"), []string{"10.0.0.1", "10.0.0.2"}},
		{"v4 /31 uses both", pool(t, "a", "10.0.0.0/31"), []string{"10.0.0.0", "10.0.0.1"}},
		{"v4 /32", pool(t, "a", "10.0.0.9/32"), []string{"10.0.0.9"}},
		{"v4 first-last range uses ends", pool(t, "a", "10.0.0.0-10.0.0.2"), []string{"10.0.0.0", "10.0.0.1", "10.0.0.2"}},
		{"v6 /126 uses all", pool(t, "a", "fd00::/126"), []string{"fd00::", "fd00::1", "fd00::2", "fd00::3"}},
		{"opt in", func() Pool { p := pool(t, "a", "10.0.0.0/30"); p.IncludeNetworkBroadcast = true; return p }(),
			[]string{"10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAlloc(t, tc.p)
			fam := "IPv4"
			if strings.Contains(tc.wantAddr[0], ":") {
				fam = "IPv6"
			}
			var got []string
			for i := 0; ; i++ {
				as, err := a.Assign(rq("s" + string(rune('a'+i))).fams(familyOf(mustAddr(tc.wantAddr[0]))))
				if err != nil {
					if Reason(err) != "AddressPoolExhausted" {
						t.Fatalf("stopped with %v, want exhaustion", err)
					}
					break
				}
				got = append(got, ipStrings(as)...)
			}
			if strings.Join(got, ",") != strings.Join(tc.wantAddr, ",") {
				t.Errorf("%s handed out %v, want %v", fam, got, tc.wantAddr)
			}
		})
	}
	// Asking for the network address explicitly says why it is refused.
	a := newAlloc(t, pool(t, "a", "10.0.0.0/24"))
	_, err := a.Assign(rq("x").ips("10.0.0.0"))
	if Reason(err) != "AddressNotInPool" || !strings.Contains(err.Error(), "network address of 10.0.0.0/24 in pool a") {
		t.Errorf("Assign(network address) = %v", err)
	}
}
