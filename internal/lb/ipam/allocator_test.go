package ipam

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// step is one Assign (or Release, when release is set) as the controller
// would issue it, with the addresses it must get or the error it must see.
type step struct {
	req     Request
	release string
	want    []string
	err     error
	msg     string // substring of the error message
}

type scenario struct {
	name  string
	pools []Pool
	steps []step
}

func runScenarios(t *testing.T, scs []scenario) {
	t.Helper()
	for _, sc := range scs {
		t.Run(sc.name, func(t *testing.T) {
			a := newAlloc(t, sc.pools...)
			for i, st := range sc.steps {
				if st.release != "" {
					a.Release(key(st.release))
					continue
				}
				as, err := a.Assign(st.req)
				if st.err != nil {
					if !errors.Is(err, st.err) || !strings.Contains(err.Error(), st.msg) {
						t.Fatalf("step %d: Assign(%s) = %v, %v; want error %v containing %q", i, st.req.Service, ipStrings(as), err, st.err, st.msg)
					}
					if _, held := a.Assigned(st.req.Service); held {
						t.Fatalf("step %d: %s still holds addresses after an error", i, st.req.Service)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: Assign(%s) = %v", i, st.req.Service, err)
				}
				if got := strings.Join(ipStrings(as), ","); got != strings.Join(st.want, ",") {
					t.Fatalf("step %d: Assign(%s) = %s, want %v", i, st.req.Service, got, st.want)
				}
				if got, _ := a.Assigned(st.req.Service); strings.Join(ipStrings(got), ",") != strings.Join(st.want, ",") {
					t.Fatalf("step %d: Assigned(%s) = %v after Assign", i, st.req.Service, ipStrings(got))
				}
			}
		})
	}
}

func ok(r Request, ips ...string) step           { return step{req: r, want: ips} }
func fail(r Request, err error, msg string) step { return step{req: r, err: err, msg: msg} }
func rel(s string) step                          { return step{release: s} }

func TestAutoAssign(t *testing.T) {
	runScenarios(t, []scenario{
		{"lowest free of first pool by name, then next pool",
			[]Pool{pool(t, "b", "10.0.1.0/30"), pool(t, "a", "10.0.0.10-10.0.0.11")},
			[]step{ok(rq("s1"), "10.0.0.10"), ok(rq("s2"), "10.0.0.11"), ok(rq("s3"), "10.0.1.1"), ok(rq("s4"), "10.0.1.2"),
				fail(rq("s5"), ErrPoolExhausted, "no free IPv4 address for default/s5 in address pool a, b")}},
		{"released address is reused, lowest first",
			[]Pool{pool(t, "a", "10.0.0.0/29")},
			[]step{ok(rq("s1"), "10.0.0.1"), ok(rq("s2"), "10.0.0.2"), ok(rq("s3"), "10.0.0.3"),
				rel("s2"), rel("s1"), ok(rq("s4"), "10.0.0.1"), ok(rq("s5"), "10.0.0.2"), ok(rq("s6"), "10.0.0.4")}},
		{"ranges in address order within a pool",
			[]Pool{pool(t, "a", "10.0.9.1", "10.0.0.5-10.0.0.6")},
			[]step{ok(rq("s1"), "10.0.0.5"), ok(rq("s2"), "10.0.0.6"), ok(rq("s3"), "10.0.9.1")}},
		{"auto-assign off is skipped unless its pool or address is asked for",
			[]Pool{manual(pool(t, "a", "10.0.0.0/30")), pool(t, "b", "10.0.1.0/30")},
			[]step{ok(rq("s1"), "10.0.1.1"), ok(rq("s2").inPool("a"), "10.0.0.1"), ok(rq("s3").ips("10.0.0.2"), "10.0.0.2"),
				ok(rq("s4"), "10.0.1.2"), fail(rq("s5"), ErrPoolExhausted, "in address pool b")}},
		{"only auto-assign off pools",
			[]Pool{manual(pool(t, "a", "10.0.0.0/30"))},
			[]step{fail(rq("s1"), ErrNoPool, "pool a does not auto-assign")}},
		{"no pools", nil, []step{fail(rq("s1"), ErrNoPool, "there are no address pools")}},
		{"requested pool missing", []Pool{pool(t, "a", "10.0.0.0/30")},
			[]step{fail(rq("s1").inPool("zz"), ErrNoPool, "address pool zz, requested by default/s1, does not exist")}},
		{"requested pool only",
			[]Pool{pool(t, "a", "10.0.0.0/30"), pool(t, "b", "10.0.1.0/31")},
			[]step{ok(rq("s1").inPool("b"), "10.0.1.0"), ok(rq("s2").inPool("b"), "10.0.1.1"),
				fail(rq("s3").inPool("b"), ErrPoolExhausted, "address pool b")}},
	})
}

func TestDeterministic(t *testing.T) {
	pools := []Pool{pool(t, "z", "10.9.0.0/28"), pool(t, "m", "10.5.0.0/29", "fd00::/125"), manual(pool(t, "a", "10.1.0.0/28"))}
	reqs := []Request{rq("a"), rq("b").fams(corev1.IPv6Protocol, corev1.IPv4Protocol), rq("c").share("k", 443), rq("d").share("k", 80),
		rq("e").inPool("a"), rq("f"), rq("g").ips("10.9.0.3"), rq("h"), rq("i"), rq("j")}
	run := func() []string {
		a := newAlloc(t, pools...)
		var out []string
		for i, r := range reqs {
			as, err := a.Assign(r)
			out = append(out, strings.Join(ipStrings(as), ",")+Reason(err))
			if i == 4 {
				a.Release(key("a"))
			}
		}
		return out
	}
	first := run()
	for i := 0; i < 5; i++ {
		if got := run(); strings.Join(got, " ") != strings.Join(first, " ") {
			t.Fatalf("run %d gave %v, first run %v", i, got, first)
		}
	}
	want := "10.5.0.1 fd00::,10.5.0.2 10.5.0.3 10.5.0.3 10.1.0.1 10.5.0.1 10.9.0.3 10.5.0.4 10.5.0.5 10.5.0.6"
	if strings.Join(first, " ") != want {
		t.Errorf("assignments = %v, want %v", first, want)
	}
}

func TestSelectors(t *testing.T) {
	prod := func(s string) Request {
		r := rq(s)
		r.NamespaceLabels["env"] = "prod"
		return r
	}
	web := func(r Request) Request { r.ServiceLabels = map[string]string{"app": "web"}; return r }
	runScenarios(t, []scenario{
		{"namespace selector",
			[]Pool{nsSel(t, pool(t, "a", "10.0.0.0/30"), "env=prod"), pool(t, "b", "10.0.1.0/30")},
			[]step{ok(rq("dev/s1"), "10.0.1.1"), ok(prod("prod/s1"), "10.0.0.1"),
				fail(rq("dev/s2").inPool("a"), ErrNoPool, `pool a does not admit namespace dev (namespace selector "env=prod")`)}},
		{"namespace by name",
			[]Pool{nsSel(t, pool(t, "a", "10.0.0.0/30"), "kubernetes.io/metadata.name=team")},
			[]step{ok(rq("team/s1"), "10.0.0.1"), fail(rq("other/s1"), ErrNoPool, "does not admit namespace other")}},
		{"service selector",
			[]Pool{svcSel(t, pool(t, "a", "10.0.0.0/30"), "app=web"), pool(t, "b", "10.0.1.0/30")},
			[]step{ok(rq("s1"), "10.0.1.1"), ok(web(rq("s2")), "10.0.0.1"),
				fail(rq("s3").ips("10.0.0.2"), ErrNotAllowed, `pool a does not admit service default/s3 (service selector "app=web")`)}},
	})
}

func TestRequestedAddress(t *testing.T) {
	pools := func() []Pool {
		return []Pool{pool(t, "a", "10.0.0.0/24"), nsSel(t, pool(t, "b", "10.0.1.0/24"), "env=prod"), pool(t, "v6", "fd00::/64")}
	}
	runScenarios(t, []scenario{
		{"in pool", pools(), []step{ok(rq("s1").ips("10.0.0.77"), "10.0.0.77"), ok(rq("s2"), "10.0.0.1")}},
		{"v6 in pool", pools(), []step{ok(rq("s1").ips("fd00::abcd"), "fd00::abcd")}},
		{"out of every pool", pools(),
			[]step{fail(rq("s1").ips("192.168.1.1"), ErrNotInPool, "192.168.1.1, requested by default/s1, is not in any address pool")}},
		{"pool excludes namespace", pools(),
			[]step{fail(rq("dev/s1").ips("10.0.1.5"), ErrNotAllowed, `10.0.1.5, requested by dev/s1, may not be used: pool b does not admit namespace dev`)}},
		{"in use", pools(),
			[]step{ok(rq("ns1/web").ips("10.0.0.5"), "10.0.0.5"),
				fail(rq("s2").ips("10.0.0.5"), ErrInUse, "10.0.0.5, for default/s2, is in use by ns1/web")}},
		{"auto-assigned address then requested", pools(),
			[]step{ok(rq("s1"), "10.0.0.1"), fail(rq("s2").ips("10.0.0.1"), ErrInUse, "in use by default/s1")}},
		{"requested address not in requested pool", pools(),
			[]step{fail(rq("s1").ips("10.0.0.5").inPool("v6"), ErrNotInPool, "10.0.0.5, requested by default/s1, is not in its requested pool v6 (it is in pool a)")}},
		{"family mismatch", pools(),
			[]step{fail(rq("s1").ips("fd00::1").fams(corev1.IPv4Protocol), ErrInvalidRequest, "requested address fd00::1 is IPv6 but the service's IP families are [IPv4]")}},
		{"two of one family", pools(),
			[]step{fail(rq("s1").ips("10.0.0.1", "10.0.0.2"), ErrInvalidRequest, "more than one IPv4 address requested")}},
		{"auto skips requested addresses", pools(),
			[]step{ok(rq("s1").ips("10.0.0.1"), "10.0.0.1"), ok(rq("s2"), "10.0.0.2")}},
	})
	// The error carries the holder for the controller's event.
	a := newAlloc(t, pools()...)
	mustAssign(t, a, rq("ns1/web").ips("10.0.0.5"))
	_, err := a.Assign(rq("s2").ips("10.0.0.5"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not *Error", err)
	}
	if h, ok := e.Holder(); !ok || h != key("ns1/web") {
		t.Errorf("Holder = %v, %v", h, ok)
	}
	if ip, ok := e.Address(); !ok || ip.String() != "10.0.0.5" {
		t.Errorf("Address = %v, %v", ip, ok)
	}
}

func TestSharing(t *testing.T) {
	p := func() []Pool { return []Pool{pool(t, "a", "10.0.0.0/29")} }
	udp := func(r Request) Request { r.Ports = []Port{{corev1.ProtocolUDP, 53}}; return r }
	runScenarios(t, []scenario{
		{"same key, distinct ports", p(), []step{
			ok(rq("dns-tcp").ips("10.0.0.3").share("k", 53), "10.0.0.3"),
			ok(udp(rq("dns-udp").ips("10.0.0.3").share("k")), "10.0.0.3"),
			ok(rq("web").ips("10.0.0.3").share("k", 80, 443), "10.0.0.3")}},
		{"same key, auto-assign joins the key's address", p(), []step{
			ok(rq("other"), "10.0.0.1"),
			ok(rq("s1").share("k", 80), "10.0.0.2"),
			ok(rq("s2").share("k", 443), "10.0.0.2"),
			ok(rq("s3").share("k", 443), "10.0.0.3")}},
		{"overlapping ports", p(), []step{
			ok(rq("s1").ips("10.0.0.3").share("k", 80, 443), "10.0.0.3"),
			fail(rq("s2").ips("10.0.0.3").share("k", 443), ErrInUse, `in use by default/s1 with sharing key "k", and both use port TCP/443`)}},
		{"different keys", p(), []step{
			ok(rq("s1").ips("10.0.0.3").share("k1", 80), "10.0.0.3"),
			fail(rq("s2").ips("10.0.0.3").share("k2", 81), ErrInUse, `in use by default/s1 with sharing key "k1", not "k2"`)}},
		{"holder does not share", p(), []step{
			ok(rq("s1").ips("10.0.0.3"), "10.0.0.3"),
			fail(rq("s2").ips("10.0.0.3").share("k", 81), ErrInUse, "in use by default/s1, which does not allow sharing")}},
		{"newcomer has no key", p(), []step{
			ok(rq("s1").ips("10.0.0.3").share("k", 80), "10.0.0.3"),
			fail(rq("s2").ips("10.0.0.3").share("", 81), ErrInUse, `in use by default/s1 (which allows sharing with key "k"`)}},
		{"release one keeps it for the others", p(), []step{
			ok(rq("s1").ips("10.0.0.3").share("k", 80), "10.0.0.3"),
			ok(rq("s2").ips("10.0.0.3").share("k", 81), "10.0.0.3"),
			rel("s1"),
			fail(rq("s3").ips("10.0.0.3"), ErrInUse, "in use by default/s2"),
			ok(rq("s4").ips("10.0.0.3").share("k", 80), "10.0.0.3"),
			rel("s2"), rel("s4"),
			ok(rq("s5").ips("10.0.0.3"), "10.0.0.3")}},
		{"port change into overlap moves the changer", p(), []step{
			ok(rq("s1").share("k", 80), "10.0.0.1"),
			ok(rq("s2").share("k", 81), "10.0.0.1"),
			ok(rq("s2").share("k", 80), "10.0.0.2")}},
	})
}

func TestIdempotentAndChangedRequest(t *testing.T) {
	dual := func(r Request) Request { return r.fams(corev1.IPv4Protocol, corev1.IPv6Protocol) }
	runScenarios(t, []scenario{
		{"same request, same addresses", []Pool{pool(t, "a", "10.0.0.0/29")}, []step{
			ok(rq("s1"), "10.0.0.1"), ok(rq("s2"), "10.0.0.2"), rel("s1"),
			ok(rq("s2"), "10.0.0.2"), ok(rq("s2"), "10.0.0.2")}},
		{"auto then request the same address keeps it", []Pool{pool(t, "a", "10.0.0.0/29")}, []step{
			ok(rq("s1"), "10.0.0.1"), ok(rq("s1").ips("10.0.0.1"), "10.0.0.1")}},
		{"changed requested address releases the old", []Pool{pool(t, "a", "10.0.0.0/29")}, []step{
			ok(rq("s1").ips("10.0.0.5"), "10.0.0.5"), ok(rq("s1").ips("10.0.0.6"), "10.0.0.6"),
			ok(rq("s2").ips("10.0.0.5"), "10.0.0.5")}},
		{"failed change leaves nothing", []Pool{pool(t, "a", "10.0.0.0/29")}, []step{
			ok(rq("s1").ips("10.0.0.5"), "10.0.0.5"),
			fail(rq("s1").ips("10.9.9.9"), ErrNotInPool, "not in any address pool"),
			ok(rq("s2").ips("10.0.0.5"), "10.0.0.5")}},
		{"pool change moves", []Pool{pool(t, "a", "10.0.0.0/29"), pool(t, "b", "10.0.1.0/29")}, []step{
			ok(rq("s1"), "10.0.0.1"), ok(rq("s1").inPool("b"), "10.0.1.1"), ok(rq("s2"), "10.0.0.1")}},
		{"single to dual keeps the IPv4 address", []Pool{pool(t, "a", "10.0.0.0/29", "fd00::/120")}, []step{
			ok(rq("s0"), "10.0.0.1"), ok(rq("s1"), "10.0.0.2"), rel("s0"),
			ok(dual(rq("s1")), "10.0.0.2", "fd00::"),
			ok(rq("s1").fams(corev1.IPv6Protocol, corev1.IPv4Protocol), "fd00::", "10.0.0.2")}},
		{"label change out of the pool's selector moves", []Pool{svcSel(t, pool(t, "a", "10.0.0.0/29"), "!legacy"), pool(t, "b", "10.0.1.0/29")}, []step{
			ok(rq("s1"), "10.0.0.1"),
			ok(func() Request { r := rq("s1"); r.ServiceLabels = map[string]string{"legacy": "1"}; return r }(), "10.0.1.1")}},
	})
}

func TestDualStack(t *testing.T) {
	dual := func(r Request) Request { return r.fams(corev1.IPv4Protocol, corev1.IPv6Protocol) }
	runScenarios(t, []scenario{
		{"one of each from the same pool", []Pool{pool(t, "a", "10.0.0.0/30"), pool(t, "b", "10.0.1.0/30", "fd00:1::/126")}, []step{
			ok(dual(rq("s1")), "10.0.1.1", "fd00:1::"),
			ok(rq("s2").fams(corev1.IPv6Protocol, corev1.IPv4Protocol), "fd00:1::1", "10.0.1.2"),
			ok(rq("s3").fams(corev1.IPv6Protocol), "fd00:1::2"),
			ok(rq("s4"), "10.0.0.1"),
			fail(dual(rq("s5")), ErrPoolExhausted, "no free IPv4 and IPv6 address for default/s5 in address pool b")}},
		{"no dual pool", []Pool{pool(t, "a", "10.0.0.0/30"), pool(t, "b", "fd00::/126")}, []step{
			fail(dual(rq("s1")), ErrNoPool, "no address pool can give default/s1 IPv4 and IPv6 addresses: pool a has no IPv6 addresses; pool b has no IPv4 addresses")}},
		{"requested pair across pools", []Pool{pool(t, "a", "10.0.0.0/30"), pool(t, "b", "fd00::/126")}, []step{
			ok(dual(rq("s1").ips("fd00::2", "10.0.0.2")), "10.0.0.2", "fd00::2")}},
		{"requested one address for two families", []Pool{pool(t, "a", "10.0.0.0/30", "fd00::/126")}, []step{
			fail(dual(rq("s1").ips("10.0.0.2")), ErrInvalidRequest, "do not give one address for each IP family")}},
	})
	// Assignment.Addresses name the pool of each address.
	a := newAlloc(t, pool(t, "a", "10.0.0.0/30"), pool(t, "b", "fd00::/126"))
	as, err := a.Assign(dual(rq("s1").ips("fd00::2", "10.0.0.2")))
	if err != nil || len(as.Addresses) != 2 || as.Addresses[0].Pool != "a" || as.Addresses[1].Pool != "b" {
		t.Errorf("Assign = %+v, %v", as, err)
	}
}

func TestReasons(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{ErrPoolExhausted, "AddressPoolExhausted"},
		{&Error{kind: ErrInUse}, "AddressInUse"},
		{errors.New("x"), "AllocationFailed"},
	} {
		if got := Reason(tc.err); got != tc.want {
			t.Errorf("Reason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
