package ipam

import (
	"errors"
	"fmt"
	"math/rand"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, x := range s {
		out = append(out, netip.MustParseAddr(x))
	}
	return out
}

func TestRestoreThenAssign(t *testing.T) {
	a := newAlloc(t, pool(t, "a", "10.0.0.0/29"), pool(t, "b", "10.0.1.0/29"))
	// A restarted controller replays status.loadBalancer.ingress.
	for _, tc := range []struct {
		svc  string
		ips  []string
		req  Request
		err  error
		want []string
	}{
		{"s1", []string{"10.0.0.1"}, rq("s1"), nil, []string{"10.0.0.1"}},
		{"s3", []string{"10.0.0.3"}, rq("s3"), nil, []string{"10.0.0.3"}},
		{"web", []string{"10.0.1.4"}, rq("web").share("k", 80), nil, []string{"10.0.1.4"}},
		{"web-tls", []string{"10.0.1.4"}, rq("web-tls").share("k", 443), nil, []string{"10.0.1.4"}},
		{"dup", []string{"10.0.0.3"}, rq("dup"), ErrInUse, nil},
		{"gone", []string{"192.168.0.1"}, rq("gone"), ErrNotInPool, nil},
		{"none", nil, rq("none"), nil, nil},
	} {
		as, err := a.Restore(key(tc.svc), addrs(tc.ips...), tc.req)
		if !errors.Is(err, tc.err) || strings.Join(ipStrings(as), ",") != strings.Join(tc.want, ",") {
			t.Fatalf("Restore(%s, %v) = %v, %v; want %v, %v", tc.svc, tc.ips, ipStrings(as), err, tc.want, tc.err)
		}
	}
	// New services never get a restored address...
	for i, want := range []string{"10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.1.1"} {
		if got := mustAssign(t, a, rq(fmt.Sprintf("new%d", i))); got[0] != want {
			t.Errorf("new%d got %v, want %s", i, got, want)
		}
	}
	// ...and restored ones keep theirs when the controller syncs them.
	for _, r := range []Request{rq("s1"), rq("s3"), rq("web").share("k", 80), rq("web-tls").share("k", 443)} {
		want, _ := a.Assigned(r.Service)
		if got := mustAssign(t, a, r); strings.Join(got, ",") != strings.Join(ipStrings(want), ",") {
			t.Errorf("Assign(%s) after Restore = %v, want %v", r.Service, got, ipStrings(want))
		}
	}
	// The refused ones get fresh addresses.
	if got := mustAssign(t, a, rq("dup")); got[0] != "10.0.1.2" {
		t.Errorf("dup got %v", got)
	}
}

func TestRestoreAddressNoLongerAdmitted(t *testing.T) {
	a := newAlloc(t, nsSel(t, pool(t, "a", "10.0.0.0/29"), "env=prod"), pool(t, "b", "10.0.1.0/29"))
	// Recorded (nobody else may take it meanwhile), moved by the next Assign.
	if _, err := a.Restore(key("dev/s1"), addrs("10.0.0.4"), rq("dev/s1")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Assign(rq("s2").ips("10.0.0.4")); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("requesting it from another namespace = %v", err)
	}
	if got := mustAssign(t, a, rq("dev/s1")); got[0] != "10.0.1.1" {
		t.Errorf("Assign after Restore = %v, want a move to pool b", got)
	}
}

func TestSetPoolsOrphans(t *testing.T) {
	a := newAlloc(t, pool(t, "a", "10.0.0.0/24"), pool(t, "b", "10.0.1.0/24"))
	mustAssign(t, a, rq("s1"))                       // 10.0.0.1
	mustAssign(t, a, rq("s2").ips("10.0.0.200"))     // requested
	mustAssign(t, a, rq("s3").ips("10.0.1.9"))       // pool b
	mustAssign(t, a, rq("ns2/s4").ips("10.0.0.100")) // namespace will be excluded
	mustAssign(t, a, rq("s5").inPool("a"))           // 10.0.0.2, asked for pool a

	// Shrink a, drop b, restrict namespaces, and move 10.0.0.2's range to pool c.
	orphans, err := a.SetPools([]Pool{
		nsSel(t, pool(t, "a", "10.0.0.0-10.0.0.1", "10.0.0.100-10.0.0.150"), "kubernetes.io/metadata.name=default"),
		pool(t, "c", "10.0.0.2"),
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range orphans {
		got = append(got, fmt.Sprintf("%s %s %s: %v", o.Service, o.Address, Reason(o.Err), o.Err))
	}
	want := []string{
		"default/s2 10.0.0.200 AddressNotInPool: 10.0.0.200, held by default/s2, is not in any address pool",
		"default/s3 10.0.1.9 AddressNotInPool: 10.0.1.9, held by default/s3, is not in any address pool",
		"default/s5 10.0.0.2 AddressNotInPool: 10.0.0.2, held by default/s5, is not in its requested pool a (it is in pool c)",
		`ns2/s4 10.0.0.100 AddressPoolNotAllowed: 10.0.0.100, held by ns2/s4, may not be used: pool a does not admit namespace ns2 (namespace selector "kubernetes.io/metadata.name=default")`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("orphans:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Nothing was dropped: the orphans still hold their addresses until the
	// controller re-assigns them.
	if as, ok := a.Assigned(key("s2")); !ok || ipStrings(as)[0] != "10.0.0.200" {
		t.Errorf("s2 = %v, %v after SetPools", ipStrings(as), ok)
	}
	if _, err := a.Assign(rq("s2").ips("10.0.0.200")); !errors.Is(err, ErrNotInPool) {
		t.Errorf("re-Assign of s2 = %v, want ErrNotInPool", err)
	}
	if got := mustAssign(t, a, rq("s3")); got[0] != "10.0.0.0" {
		t.Errorf("re-Assign of s3 = %v, want the lowest free address of a (a first-last range, so .0 is usable)", got)
	}
	if got := mustAssign(t, a, rq("s1")); got[0] != "10.0.0.1" {
		t.Errorf("s1 moved to %v although its address is still in pool a", got)
	}
}

func TestSetPoolsInvalid(t *testing.T) {
	a := newAlloc(t, pool(t, "a", "10.0.0.0/30"))
	for _, tc := range []struct {
		pools []Pool
		want  string
	}{
		{[]Pool{pool(t, "", "10.0.0.0/30")}, "address pool without a name"},
		{[]Pool{{Name: "x"}}, "address pool x has no address ranges"},
		{[]Pool{pool(t, "x", "10.0.0.0/30"), pool(t, "x", "10.0.1.0/30")}, "duplicate address pool x"},
		{[]Pool{{Name: "x", Ranges: []Range{{First: mustAddr("10.0.0.9"), Last: mustAddr("10.0.0.1")}}}}, "10.0.0.9 is after 10.0.0.1"},
	} {
		if _, err := a.SetPools(tc.pools); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SetPools = %v, want %q", err, tc.want)
		}
	}
	if got := mustAssign(t, a, rq("s1")); got[0] != "10.0.0.1" {
		t.Errorf("pools changed by a failed SetPools: got %v", got)
	}
}

func TestRequestFromService(t *testing.T) {
	svc := func(lbIP string, ann map[string]string) *corev1.Service {
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", Labels: map[string]string{"app": "web"}, Annotations: ann},
			Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeLoadBalancer, LoadBalancerIP: lbIP,
				IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol},
				Ports:      []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 80}, {Protocol: corev1.ProtocolUDP, Port: 53}},
			},
		}
	}
	for _, tc := range []struct {
		name    string
		svc     *corev1.Service
		want    string
		wantErr string
	}{
		{"plain", svc("", nil), "ns/web [] pool= key= [TCP/80 UDP/53]", ""},
		{"annotations", svc("", map[string]string{AnnotationIPs: " 10.0.0.5, fd00::5 ", AnnotationSharingKey: "k", AnnotationPool: "p"}),
			"ns/web [10.0.0.5 fd00::5] pool=p key=k [TCP/80 UDP/53]", ""},
		{"loadBalancerIP", svc("10.0.0.7", nil), "ns/web [10.0.0.7] pool= key= [TCP/80 UDP/53]", ""},
		{"both agree", svc("10.0.0.5", map[string]string{AnnotationIPs: "10.0.0.5,fd00::5"}), "ns/web [10.0.0.5 fd00::5] pool= key= [TCP/80 UDP/53]", ""},
		{"both disagree", svc("10.0.0.6", map[string]string{AnnotationIPs: "10.0.0.5"}), "", "spec.loadBalancerIP 10.0.0.6 is not among the addresses of annotation portal.dev/lb-ips"},
		{"bad annotation", svc("", map[string]string{AnnotationIPs: "10.0.0.300"}), "", `annotation portal.dev/lb-ips of ns/web: "10.0.0.300" is not an IP address`},
		{"bad loadBalancerIP", svc("x", nil), "", `spec.loadBalancerIP of ns/web: "x" is not an IP address`},
	} {
		r, err := RequestFromService(tc.svc, map[string]string{"env": "prod"})
		if tc.wantErr != "" {
			if !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		got := fmt.Sprintf("%s %v pool=%s key=%s %v", r.Service, r.Addresses, r.Pool, r.SharingKey, r.Ports)
		if err != nil || got != tc.want || r.NamespaceLabels["env"] != "prod" || r.ServiceLabels["app"] != "web" || len(r.Families) != 2 {
			t.Errorf("%s: = %s, %v; want %s", tc.name, got, err, tc.want)
		}
	}
	// End to end: the request it builds is honoured.
	a := newAlloc(t, pool(t, "p", "10.0.0.0/24", "fd00::/120"))
	r, _ := RequestFromService(svc("", map[string]string{AnnotationIPs: "fd00::5,10.0.0.5"}), nil)
	if got := mustAssign(t, a, r); strings.Join(got, ",") != "10.0.0.5,fd00::5" {
		t.Errorf("Assign = %v", got)
	}
}

// checkInvariant asserts, from Assigned and Holders, that no address is
// held by two services unless they carry the same sharing key and their
// ports are disjoint, and that the two views agree.
func checkInvariant(t *testing.T, a *Allocator, reqs map[ServiceKey]Request, step int) (shared int) {
	t.Helper()
	byIP := map[netip.Addr][]ServiceKey{}
	for k := range reqs {
		as, ok := a.Assigned(k)
		if !ok {
			continue
		}
		fams := map[bool]bool{}
		for _, ip := range as.IPs() {
			if fams[ip.Is4()] {
				t.Fatalf("step %d: %s holds two addresses of one family: %v", step, k, as.IPs())
			}
			fams[ip.Is4()] = true
			byIP[ip] = append(byIP[ip], k)
		}
	}
	for ip, ks := range byIP {
		slices.SortFunc(ks, func(x, y ServiceKey) int { return strings.Compare(x.String(), y.String()) })
		if len(ks) > 1 {
			shared++
		}
		if h := a.Holders(ip); !slices.Equal(h, ks) {
			t.Fatalf("step %d: Holders(%s) = %v, Assigned says %v", step, ip, h, ks)
		}
		for i := range ks {
			for j := i + 1; j < len(ks); j++ {
				ri, rj := reqs[ks[i]], reqs[ks[j]]
				if ri.SharingKey == "" || ri.SharingKey != rj.SharingKey {
					t.Fatalf("step %d: %s held by %s (key %q) and %s (key %q)", step, ip, ks[i], ri.SharingKey, ks[j], rj.SharingKey)
				}
				if p, ok := overlap(ri.Ports, rj.Ports); ok {
					t.Fatalf("step %d: %s held by %s and %s, both on %s", step, ip, ks[i], ks[j], p)
				}
			}
		}
	}
	return shared
}

func randomRequest(rng *rand.Rand, svc string) Request {
	r := rq(svc).share([]string{"", "", "k1", "k2"}[rng.Intn(4)], int32(80+rng.Intn(3)))
	if rng.Intn(3) == 0 {
		r.Ports = append(r.Ports, Port{corev1.ProtocolUDP, int32(80 + rng.Intn(3))})
	}
	switch rng.Intn(4) {
	case 0:
		r = r.fams(corev1.IPv6Protocol)
	case 1:
		r = r.fams(corev1.IPv4Protocol, corev1.IPv6Protocol)
	}
	if rng.Intn(3) == 0 {
		var ips []string
		for _, f := range r.Families {
			if f == corev1.IPv6Protocol {
				ips = append(ips, fmt.Sprintf("fd00::%x", rng.Intn(6)))
			} else {
				ips = append(ips, fmt.Sprintf("10.0.0.%d", rng.Intn(9)))
			}
		}
		if len(ips) == 0 {
			ips = []string{fmt.Sprintf("10.0.0.%d", rng.Intn(9))}
		}
		r = r.ips(ips...)
	}
	if rng.Intn(6) == 0 {
		r = r.inPool([]string{"a", "b", "c"}[rng.Intn(3)])
	}
	return r
}

func TestPropertyNoIllegalSharing(t *testing.T) {
	poolSets := [][]Pool{
		{pool(t, "a", "10.0.0.0/30", "fd00::/126"), pool(t, "b", "10.0.0.4-10.0.0.6")},
		{pool(t, "a", "10.0.0.0/29"), manual(pool(t, "c", "fd00::-fd00::5", "10.0.0.8"))},
		{pool(t, "b", "10.0.0.2-10.0.0.3", "fd00::2")},
	}
	shared, reasons := 0, map[string]int{}
	for seed := int64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewSource(seed))
		a := newAlloc(t, poolSets[0]...)
		reqs := map[ServiceKey]Request{}
		for step := 0; step < 400; step++ {
			svc := fmt.Sprintf("s%d", rng.Intn(12))
			switch op := rng.Intn(10); {
			case op < 6:
				r := randomRequest(rng, svc)
				_, err := a.Assign(r)
				reasons[Reason(err)]++
				if err == nil {
					reqs[r.Service] = r
				} else if Reason(err) == "AllocationFailed" {
					t.Fatalf("seed %d step %d: unclassified error %v", seed, step, err)
				}
			case op < 8:
				a.Release(key(svc))
			case op < 9:
				if _, err := a.SetPools(poolSets[rng.Intn(len(poolSets))]); err != nil {
					t.Fatal(err)
				}
			default:
				r := randomRequest(rng, svc)
				ips := r.Addresses
				if len(ips) == 0 {
					ips = addrs(fmt.Sprintf("10.0.0.%d", rng.Intn(9)))
				}
				if _, err := a.Restore(r.Service, ips, r); err == nil {
					reqs[r.Service] = r
				}
			}
			shared += checkInvariant(t, a, reqs, step)
		}
	}
	// The walk must reach the interesting states, or it proves nothing.
	for _, r := range []string{"", "AddressInUse", "AddressPoolExhausted", "AddressNotInPool", "NoAddressPool"} {
		if reasons[r] == 0 {
			t.Errorf("no Assign ended with reason %q: %v", r, reasons)
		}
	}
	if shared == 0 {
		t.Error("no address was ever shared")
	}
	t.Logf("outcomes %v, shared-address observations %d", reasons, shared)
}

func TestConcurrent(t *testing.T) {
	pools := []Pool{pool(t, "a", "10.0.0.0/26", "fd00::/122")}
	a := newAlloc(t, pools...)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(g)))
			for i := 0; i < 300; i++ {
				svc := fmt.Sprintf("g%d-s%d", g, rng.Intn(6))
				switch rng.Intn(4) {
				case 0:
					a.Release(key(svc))
				case 1:
					a.Assigned(key(svc))
				default:
					if _, err := a.Assign(rq(svc).fams(corev1.IPv4Protocol, corev1.IPv6Protocol)); err != nil {
						t.Errorf("Assign(%s) = %v", svc, err)
						return
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 50; i++ {
			if _, err := a.SetPools(pools); err != nil {
				t.Errorf("SetPools = %v", err)
			}
		}
	}()
	wg.Wait()
	// Every address is held by exactly one service.
	seen := map[netip.Addr]ServiceKey{}
	for g := 0; g < 8; g++ {
		for s := 0; s < 6; s++ {
			k := key(fmt.Sprintf("g%d-s%d", g, s))
			as, ok := a.Assigned(k)
			if !ok {
				continue
			}
			for _, ip := range as.IPs() {
				if o, dup := seen[ip]; dup {
					t.Fatalf("%s held by %s and %s", ip, o, k)
				}
				seen[ip] = k
			}
		}
	}
	if len(seen) == 0 {
		t.Fatal("no assignments survived")
	}
}
