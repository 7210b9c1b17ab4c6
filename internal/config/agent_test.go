package config

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseUpstream(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.53":       "192.0.2.53:53",
		"192.0.2.53:5353":  "192.0.2.53:5353",
		"[2001:db8::1]:53": "[2001:db8::1]:53",
		"2001:db8::1":      "[2001:db8::1]:53",
	} {
		got, err := ParseUpstream(in)
		if err != nil || got != netip.MustParseAddrPort(want) {
			t.Errorf("ParseUpstream(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	if _, err := ParseUpstream("dns.example"); err == nil {
		t.Error("a name is not an upstream")
	}
}

func TestValidateDNSFlags(t *testing.T) {
	base := DefaultAgent()
	base.NodeName, base.NodeIP = "n1", "192.0.2.10"
	if err := base.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for name, tc := range map[string]struct {
		change func(*Agent)
		want   string
	}{
		"bad upstream":       {func(a *Agent) { a.DNSUpstreams = []string{"x"} }, "--dns-upstream"},
		"ttl 0":              {func(a *Agent) { a.DNSTTL = 0 }, "--dns-ttl"},
		"port":               {func(a *Agent) { a.DNSPort = 0 }, "--dns-port"},
		"address":            {func(a *Agent) { a.DNSAddress = "127.0.0.1" }, "--dns-address"},
		"dns-only and proxy": {func(a *Agent) { a.DNSOnly, a.ProxyOnly = true, true }, "--dns-only"},
	} {
		a := base
		tc.change(&a)
		if err := a.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", name, err, tc.want)
		}
	}
}
