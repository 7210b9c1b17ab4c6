package proxy

import (
	"fmt"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestTracker() (*Tracker, *fakeClock) {
	c := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return NewTracker(TrackerConfig{NodeName: "n1", Now: c.now}), c
}

// summary renders Changes.Changed as "kind name old-eps -> new-eps".
func summary(ch Changes) map[string]string {
	out := map[string]string{}
	for n, c := range ch.Changed {
		out[n.String()] = fmt.Sprintf("%s %v -> %v", c.Kind(), epStrings(c.OldEndpoints), epStrings(c.NewEndpoints))
	}
	return out
}

func wantSummary(t *testing.T, ch Changes, want map[string]string) {
	t.Helper()
	got := summary(ch)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("changes:\n got  %v\n want %v", got, want)
	}
}

func TestTrackerDeltas(t *testing.T) {
	tr, clock := newTestTracker()
	http := []slicePortSpec{{"http", 8080, v1.ProtocolTCP}}
	web := svc("web", "10.0.0.1", []v1.ServicePort{port("http", 80, v1.ProtocolTCP)})

	// Empty take.
	if ch := tr.Take(); len(ch.Changed) != 0 || len(ch.Services) != 0 {
		t.Fatalf("empty tracker: %+v", ch)
	}

	// Slice first: an endpoint change without a service is state, not a change.
	s1 := slice("web-a", "web", http, ep("10.1.0.1", "n1", ""))
	if !tr.Endpoints.Update(nil, s1) {
		t.Fatal("Update reported nothing pending")
	}
	ch := tr.Take()
	wantSummary(t, ch, map[string]string{})
	if len(ch.Endpoints[spn("web", "http", v1.ProtocolTCP)]) != 1 {
		t.Fatalf("endpoints: %v", ch.Endpoints)
	}

	// Service added: the port appears with the endpoints it already has.
	clock.t = clock.t.Add(time.Second)
	tr.Services.Update(nil, web)
	ch = tr.Take()
	wantSummary(t, ch, map[string]string{"ns/web:http/TCP": "Added [10.1.0.1:8080] -> [10.1.0.1:8080]"})
	if ch.ProgrammingStart[nsn("web")] != clock.t {
		t.Fatalf("ProgrammingStart = %v, want event time %v", ch.ProgrammingStart, clock.t)
	}

	// Nothing pending: nothing changes, full state still there.
	ch = tr.Take()
	wantSummary(t, ch, map[string]string{})
	if len(ch.Services) != 1 || len(ch.Endpoints) != 1 {
		t.Fatalf("full state lost: %+v", ch)
	}

	// Endpoint added.
	s2 := slice("web-a", "web", http, ep("10.1.0.1", "n1", ""), ep("10.1.0.2", "n2", ""))
	tr.Endpoints.Update(s1, s2)
	wantSummary(t, tr.Take(), map[string]string{"ns/web:http/TCP": "Updated [10.1.0.1:8080] -> [10.1.0.1:8080 10.1.0.2:8080]"})

	// Status-only service update and an identical slice resync: nothing.
	web2 := web.DeepCopy()
	web2.Status.Conditions = append(web2.Status.Conditions, metav1Condition())
	web2.ResourceVersion = "2"
	if tr.Services.Update(web, web2) {
		t.Fatal("status-only update reported pending")
	}
	tr.Endpoints.Update(s2, s2.DeepCopy())
	wantSummary(t, tr.Take(), map[string]string{})

	// A change undone before the sync leaves no change.
	web3 := web2.DeepCopy()
	web3.Spec.Ports[0].Port = 81
	tr.Services.Update(web2, web3)
	tr.Services.Update(web3, web2)
	wantSummary(t, tr.Take(), map[string]string{})

	// Port renamed: old name deleted, new name added (its endpoints come
	// from slice ports of the new name, none yet).
	web4 := web2.DeepCopy()
	web4.Spec.Ports[0].Name = "web"
	tr.Services.Update(web2, web4)
	wantSummary(t, tr.Take(), map[string]string{
		"ns/web:http/TCP": "Deleted [10.1.0.1:8080 10.1.0.2:8080] -> [10.1.0.1:8080 10.1.0.2:8080]",
		"ns/web:web/TCP":  "Added [] -> []",
	})

	// Service becomes headless: all its ports are deleted.
	web5 := web4.DeepCopy()
	web5.Spec.ClusterIP, web5.Spec.ClusterIPs = "None", []string{"None"}
	tr.Services.Update(web4, web5)
	ch = tr.Take()
	wantSummary(t, ch, map[string]string{"ns/web:web/TCP": "Deleted [] -> []"})
	if len(ch.Services) != 0 {
		t.Fatalf("services left: %v", ch.Services)
	}

	// Slice deleted: endpoints state gone.
	tr.Endpoints.Update(s2, nil)
	if ch = tr.Take(); len(ch.Endpoints) != 0 {
		t.Fatalf("endpoints left: %v", ch.Endpoints)
	}
}

func metav1Condition() metav1.Condition {
	return metav1.Condition{Type: "LoadBalancerReady", Status: metav1.ConditionTrue}
}

func TestTrackerServiceDeleteAndSliceMove(t *testing.T) {
	tr, _ := newTestTracker()
	p := []slicePortSpec{{"", 80, v1.ProtocolTCP}}
	a := svc("a", "10.0.0.1", []v1.ServicePort{port("", 80, v1.ProtocolTCP)})
	b := svc("b", "10.0.0.2", []v1.ServicePort{port("", 80, v1.ProtocolTCP)})
	s := slice("s", "a", p, ep("10.1.0.1", "", ""))
	tr.Services.Update(nil, a)
	tr.Services.Update(nil, b)
	tr.Endpoints.Update(nil, s)
	tr.Take()

	// The slice is relabelled to b: a loses the endpoint, b gains it.
	moved := s.DeepCopy()
	moved.Labels[discoveryv1.LabelServiceName] = "b"
	tr.Endpoints.Update(s, moved)
	wantSummary(t, tr.Take(), map[string]string{
		"ns/a:/TCP": "Updated [10.1.0.1:80] -> []",
		"ns/b:/TCP": "Updated [] -> [10.1.0.1:80]",
	})

	tr.Services.Update(b, nil)
	ch := tr.Take()
	wantSummary(t, ch, map[string]string{"ns/b:/TCP": "Deleted [10.1.0.1:80] -> [10.1.0.1:80]"})
	if _, ok := ch.Services[spn("a", "", v1.ProtocolTCP)]; !ok || len(ch.Services) != 1 {
		t.Fatalf("services: %v", ch.Services)
	}
}

func TestTrackerProgrammingStart(t *testing.T) {
	tr, clock := newTestTracker()
	a := svc("a", "10.0.0.1", []v1.ServicePort{port("", 80, v1.ProtocolTCP)})
	tr.Services.Update(nil, a)
	tr.Take()

	trigger := time.Date(2025, 12, 31, 23, 59, 58, 123000000, time.UTC)
	s := slice("s", "a", []slicePortSpec{{"", 80, v1.ProtocolTCP}}, ep("10.1.0.1", "", ""))
	s.Annotations = map[string]string{v1.EndpointsLastChangeTriggerTime: trigger.Format(time.RFC3339Nano)}
	tr.Endpoints.Update(nil, s)
	// A later event for the same service keeps the earliest start.
	clock.t = clock.t.Add(time.Minute)
	s2 := s.DeepCopy()
	s2.Annotations = nil
	s2.Endpoints = append(s2.Endpoints, s2.Endpoints[0])
	s2.Endpoints[1].Addresses = []string{"10.1.0.2"}
	tr.Endpoints.Update(s, s2)
	ch := tr.Take()
	if got := ch.ProgrammingStart[nsn("a")]; !got.Equal(trigger) {
		t.Fatalf("start = %v, want annotation time %v", got, trigger)
	}

	// A bad annotation falls back to the event time.
	s3 := s2.DeepCopy()
	s3.Annotations = map[string]string{v1.EndpointsLastChangeTriggerTime: "yesterday"}
	s3.Endpoints = s3.Endpoints[:1]
	tr.Endpoints.Update(s2, s3)
	if got := tr.Take().ProgrammingStart[nsn("a")]; !got.Equal(clock.t) {
		t.Fatalf("start = %v, want event time %v", got, clock.t)
	}

	// A change that cancels out records no start.
	tr.Endpoints.Update(s3, s2)
	tr.Endpoints.Update(s2, s3)
	if got := tr.Take().ProgrammingStart; len(got) != 0 {
		t.Fatalf("start recorded for no-op change: %v", got)
	}
}

func TestTrackerStaleConntrack(t *testing.T) {
	dnsPorts := []v1.ServicePort{port("dns", 53, v1.ProtocolUDP), port("dns-tcp", 53, v1.ProtocolTCP), port("sctp", 99, v1.ProtocolSCTP)}
	slicePorts := []slicePortSpec{{"dns", 5353, v1.ProtocolUDP}, {"dns-tcp", 5353, v1.ProtocolTCP}, {"sctp", 99, v1.ProtocolSCTP}}
	dns := svc("dns", "10.0.0.10", dnsPorts)
	type step struct {
		svc   *v1.Service // nil: unchanged; use deleted for deletion
		del   bool
		slice *discoveryv1.EndpointSlice
		// wanted cleanup: "name ep", "name", "name"
		staleEndpoints, staleServices, newlyActive []string
	}
	withEPs := func(eps ...sliceEP) *discoveryv1.EndpointSlice { return slice("dns-a", "dns", slicePorts, eps...) }
	active := []string{"ns/dns:dns/UDP", "ns/dns:sctp/SCTP"}
	moved := dns.DeepCopy()
	moved.Spec.ClusterIP, moved.Spec.ClusterIPs = "10.0.0.11", []string{"10.0.0.11"}
	cases := []struct {
		name  string
		steps []step
	}{
		{"first endpoint appears: newly active, no stale", []step{
			{svc: dns, slice: withEPs()},
			{slice: withEPs(ep("10.1.0.1", "", "")), newlyActive: []string{"ns/dns:dns/UDP", "ns/dns:sctp/SCTP"}},
		}},
		{"service created with endpoints: newly active", []step{
			{svc: dns, slice: withEPs(ep("10.1.0.1", "", "")), newlyActive: []string{"ns/dns:dns/UDP", "ns/dns:sctp/SCTP"}},
		}},
		{"DNS pod moves: old backend stale, not newly active", []step{
			{svc: dns, slice: withEPs(ep("10.1.0.1", "", "")), newlyActive: active},
			{slice: withEPs(ep("10.1.0.2", "", "")), staleEndpoints: []string{"ns/dns:dns/UDP 10.1.0.1:5353", "ns/dns:sctp/SCTP 10.1.0.1:99"}},
		}},
		{"backend still serving while terminating: not stale", []step{
			{svc: dns, slice: withEPs(ep("10.1.0.1", "", ""), ep("10.1.0.2", "", "")), newlyActive: active},
			{slice: withEPs(ep("10.1.0.1", "", "").term(true), ep("10.1.0.2", "", ""))},
		}},
		{"backend stops serving: stale", []step{
			{svc: dns, slice: withEPs(ep("10.1.0.1", "", "").term(true), ep("10.1.0.2", "", "")), newlyActive: active},
			{slice: withEPs(ep("10.1.0.1", "", "").term(false), ep("10.1.0.2", "", "")), staleEndpoints: []string{"ns/dns:dns/UDP 10.1.0.1:5353", "ns/dns:sctp/SCTP 10.1.0.1:99"}},
		}},
		{"never-serving backend removed: nothing", []step{
			{svc: dns, slice: withEPs(ep("10.1.0.1", "", "").notReady(), ep("10.1.0.2", "", "")), newlyActive: active},
			{slice: withEPs(ep("10.1.0.2", "", ""))},
		}},
		{"last endpoint gone then back", []step{
			{svc: dns, slice: withEPs(ep("10.1.0.1", "", "")), newlyActive: active},
			{slice: withEPs(), staleEndpoints: []string{"ns/dns:dns/UDP 10.1.0.1:5353", "ns/dns:sctp/SCTP 10.1.0.1:99"}},
			{slice: withEPs(ep("10.1.0.1", "", "")), newlyActive: []string{"ns/dns:dns/UDP", "ns/dns:sctp/SCTP"}},
		}},
		{"service deleted: its old ports are stale", []step{
			{svc: dns, slice: withEPs(ep("10.1.0.1", "", "")), newlyActive: active},
			{del: true, staleServices: []string{"ns/dns:dns/UDP", "ns/dns:sctp/SCTP"}},
		}},
		{"cluster IP changed: old ports stale", []step{
			{svc: dns, slice: withEPs(ep("10.1.0.1", "", "")), newlyActive: active},
			{svc: moved, staleServices: []string{"ns/dns:dns/UDP", "ns/dns:sctp/SCTP"}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, _ := newTestTracker()
			var prevSvc *v1.Service
			var prevSlice *discoveryv1.EndpointSlice
			for i, st := range tc.steps {
				if st.svc != nil {
					tr.Services.Update(prevSvc, st.svc)
					prevSvc = st.svc
				}
				if st.del {
					tr.Services.Update(prevSvc, nil)
				}
				if st.slice != nil {
					tr.Endpoints.Update(prevSlice, st.slice)
					prevSlice = st.slice
				}
				cc := tr.Take().Conntrack
				var se, ss, na []string
				for _, s := range cc.StaleEndpoints {
					se = append(se, s.Service.Name.String()+" "+s.Endpoint.String())
				}
				for _, s := range cc.StaleServices {
					ss = append(ss, s.Name.String())
				}
				for _, s := range cc.NewlyActive {
					na = append(na, s.Name.String())
				}
				if fmt.Sprint(se, ss, na) != fmt.Sprint(st.staleEndpoints, st.staleServices, st.newlyActive) {
					t.Fatalf("step %d: stale endpoints %v, stale services %v, newly active %v; want %v %v %v",
						i, se, ss, na, st.staleEndpoints, st.staleServices, st.newlyActive)
				}
				if st.del && (len(cc.StaleServices) == 0 || cc.StaleServices[0].ClusterIPs[0].String() != "10.0.0.10") {
					t.Fatalf("stale service must carry the old addresses: %+v", cc.StaleServices)
				}
			}
		})
	}
}

// Informer handlers run on their own goroutines while the sync loop takes
// changes; run with -race.
func TestTrackerConcurrent(t *testing.T) {
	tr := NewTracker(TrackerConfig{NodeName: "n1"})
	const n = 50
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range n {
			tr.Services.Update(nil, svc(fmt.Sprint("s", i), fmt.Sprintf("10.0.1.%d", i+1), []v1.ServicePort{port("", 80, v1.ProtocolUDP)}))
		}
	}()
	go func() {
		defer wg.Done()
		for i := range n {
			tr.Endpoints.Update(nil, slice("x", fmt.Sprint("s", i), []slicePortSpec{{"", 80, v1.ProtocolUDP}}, ep(fmt.Sprintf("10.1.1.%d", i+1), "n1", "")))
		}
	}()
	done := make(chan struct{})
	var last Changes
	go func() {
		defer close(done)
		for range 20 {
			ch := tr.Take()
			for range ch.Services { // read the returned maps while updates continue
			}
			last = ch
		}
	}()
	wg.Wait()
	<-done
	_ = last
	ch := tr.Take()
	if len(ch.Services) != n || len(ch.Endpoints) != n {
		t.Fatalf("final state: %d services, %d endpoint ports; want %d", len(ch.Services), len(ch.Endpoints), n)
	}
}

// BenchmarkTakeOneChange measures a partial sync's model cost with 10,000
// services of 10 endpoints each programmed: one new service, then Take.
func BenchmarkTakeOneChange(b *testing.B) {
	tr := benchTracker()
	tr.Take()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s := svc(fmt.Sprint("extra", i), "10.250.0.1", []v1.ServicePort{port("", 80, v1.ProtocolTCP)})
		tr.Services.Update(nil, s)
		if ch := tr.Take(); len(ch.Changed) != 1 {
			b.Fatalf("changed: %d", len(ch.Changed))
		}
		tr.Services.Update(s, nil)
		tr.Take()
	}
}

// BenchmarkTakeFirst measures the first sync's model cost: 10,000
// services of 10 endpoints each, all new, in one Take.
func BenchmarkTakeFirst(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		tr := benchTracker()
		b.StartTimer()
		if ch := tr.Take(); len(ch.Changed) != 10000 {
			b.Fatalf("changed: %d", len(ch.Changed))
		}
	}
}

// benchTracker is a tracker that has seen 10,000 services of 10 endpoints
// each and not yet been taken from.
func benchTracker() *Tracker {
	tr := NewTracker(TrackerConfig{NodeName: "n1"})
	p := []slicePortSpec{{"", 8080, v1.ProtocolTCP}}
	for i := range 10000 {
		name := fmt.Sprint("s", i)
		tr.Services.Update(nil, svc(name, fmt.Sprintf("10.%d.%d.1", i/256, i%256), []v1.ServicePort{port("", 80, v1.ProtocolTCP)}))
		var eps []sliceEP
		for j := range 10 {
			eps = append(eps, ep(fmt.Sprintf("10.200.%d.%d", i%256, j), "n2", ""))
		}
		tr.Endpoints.Update(nil, slice(name, name, p, eps...))
	}
	return tr
}
