package ipam

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func pool(t testing.TB, name string, ranges ...string) Pool {
	t.Helper()
	rs, err := ParseRanges(ranges...)
	if err != nil {
		t.Fatal(err)
	}
	return Pool{Name: name, Ranges: rs}
}

func manual(p Pool) Pool {
	f := false
	p.AutoAssign = &f
	return p
}

func nsSel(t testing.TB, p Pool, sel string) Pool {
	t.Helper()
	s, err := labels.Parse(sel)
	if err != nil {
		t.Fatal(err)
	}
	p.NamespaceSelector = s
	return p
}

func svcSel(t testing.TB, p Pool, sel string) Pool {
	t.Helper()
	s, err := labels.Parse(sel)
	if err != nil {
		t.Fatal(err)
	}
	p.ServiceSelector = s
	return p
}

func newAlloc(t testing.TB, pools ...Pool) *Allocator {
	t.Helper()
	a := New()
	if orphans, err := a.SetPools(pools); err != nil || len(orphans) != 0 {
		t.Fatalf("SetPools = %v, %v", orphans, err)
	}
	return a
}

func key(s string) ServiceKey {
	ns, name, ok := cut(s)
	if !ok {
		return ServiceKey{"default", s}
	}
	return ServiceKey{ns, name}
}

func cut(s string) (string, string, bool) {
	for i := range s {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return "", s, false
}

// rq is a request for "ns/name" (or "name" in default) on TCP port 80.
func rq(s string) Request {
	k := key(s)
	return Request{
		Service:         k,
		NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": k.Namespace},
		Ports:           []Port{{corev1.ProtocolTCP, 80}},
	}
}

func (r Request) ips(s ...string) Request {
	r.Addresses = nil
	for _, x := range s {
		r.Addresses = append(r.Addresses, netip.MustParseAddr(x))
	}
	return r
}

func (r Request) share(k string, ports ...int32) Request {
	r.SharingKey = k
	r.Ports = nil
	for _, p := range ports {
		r.Ports = append(r.Ports, Port{corev1.ProtocolTCP, p})
	}
	return r
}

func (r Request) fams(f ...corev1.IPFamily) Request { r.Families = f; return r }
func (r Request) inPool(p string) Request           { r.Pool = p; return r }

func ipStrings(as Assignment) []string {
	var out []string
	for _, ip := range as.IPs() {
		out = append(out, ip.String())
	}
	return out
}

func mustAssign(t testing.TB, a *Allocator, r Request) []string {
	t.Helper()
	as, err := a.Assign(r)
	if err != nil {
		t.Fatalf("Assign(%s) = %v", r.Service, err)
	}
	return ipStrings(as)
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
