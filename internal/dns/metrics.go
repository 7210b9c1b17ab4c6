package dns

import (
	"errors"
	"strconv"
	"sync"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are CoreDNS's metrics of the same meaning (see doc.go).
type metrics struct {
	requests     *prometheus.CounterVec
	responses    *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	cacheHits    *prometheus.CounterVec
	cacheMisses  *prometheus.CounterVec
	fwdRequests  *prometheus.CounterVec
	fwdResponses *prometheus.CounterVec
	autopath     *prometheus.CounterVec

	// Children of the request and response vectors, by key: resolving
	// label values costs more than answering a cluster name.
	reqChildren, respChildren sync.Map
}

type requestKey struct {
	server          string
	inZone, tcp, v6 bool
	qtype           uint16
}

type requestMetrics struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

type responseKey struct {
	server string
	inZone bool
	rcode  int
	plugin string
}

func zoneLabel(inZone bool, zone string) string {
	if inZone {
		return zone
	}
	return "."
}

func (m *metrics) forRequest(k requestKey, zone string) *requestMetrics {
	if c, ok := m.reqChildren.Load(k); ok {
		return c.(*requestMetrics)
	}
	proto, family := "udp", "1"
	if k.tcp {
		proto = "tcp"
	}
	if k.v6 {
		family = "2"
	}
	z, typ := zoneLabel(k.inZone, zone), typeLabel(k.qtype)
	c := &requestMetrics{
		requests: m.requests.WithLabelValues(k.server, z, proto, family, typ),
		duration: m.duration.WithLabelValues(k.server, z, typ),
	}
	if typ == "other" {
		// Keep one child per label set, not per unmonitored type.
		return c
	}
	m.reqChildren.Store(k, c)
	return c
}

func (m *metrics) forResponse(k responseKey, zone string) prometheus.Counter {
	if c, ok := m.respChildren.Load(k); ok {
		return c.(prometheus.Counter)
	}
	c := m.responses.WithLabelValues(k.server, zoneLabel(k.inZone, zone), rcodeLabel(k.rcode), k.plugin)
	m.respChildren.Store(k, c)
	return c
}

// timeBuckets: 0.25 ms to ~8 s, doubling, as CoreDNS's.
var timeBuckets = prometheus.ExponentialBuckets(0.00025, 2, 16)

func newMetrics(reg prometheus.Registerer, entries func() float64) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "dns", Name: "requests_total",
			Help: "Counter of DNS requests made per zone, protocol and family.",
		}, []string{"server", "zone", "proto", "family", "type"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "dns", Name: "responses_total",
			Help: "Counter of response status codes.",
		}, []string{"server", "zone", "rcode", "plugin"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "coredns", Subsystem: "dns", Name: "request_duration_seconds",
			Help: "Histogram of the time (in seconds) each request took per zone.", Buckets: timeBuckets,
		}, []string{"server", "zone", "type"}),
		cacheHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "cache", Name: "hits_total",
			Help: "The count of cache hits.",
		}, []string{"server", "type"}),
		cacheMisses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "cache", Name: "misses_total",
			Help: "The count of cache misses.",
		}, []string{"server"}),
		fwdRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "forward", Name: "requests_total",
			Help: "Counter of requests made per upstream.",
		}, []string{"to"}),
		fwdResponses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "forward", Name: "responses_total",
			Help: "Counter of responses received per upstream; rcode \"error\" counts timeouts and network errors.",
		}, []string{"to", "rcode"}),
		autopath: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "autopath", Name: "success_count_total",
			Help: "Counter of requests that did autopath.",
		}, []string{"server"}),
	}
	if reg == nil {
		return m, nil
	}
	cs := []prometheus.Collector{m.requests, m.responses, m.duration, m.cacheHits, m.cacheMisses,
		m.fwdRequests, m.fwdResponses, m.autopath,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "coredns", Subsystem: "cache", Name: "entries",
			Help: "The number of elements in the cache.",
		}, entries),
	}
	var errs []error
	for _, c := range cs {
		errs = append(errs, reg.Register(c))
	}
	return m, errors.Join(errs...)
}

// monitoredTypes are the query types that get their own label value;
// the rest count as "other", keeping the series count bounded whatever
// clients send.
var monitoredTypes = func() map[uint16]string {
	m := map[uint16]string{}
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeHINFO, dns.TypeMX,
		dns.TypeNS, dns.TypePTR, dns.TypeSOA, dns.TypeSRV, dns.TypeTXT, dns.TypeCAA, dns.TypeDS,
		dns.TypeDNSKEY, dns.TypeHTTPS, dns.TypeSVCB, dns.TypeANY, dns.TypeIXFR, dns.TypeAXFR} {
		m[t] = dns.TypeToString[t]
	}
	return m
}()

func typeLabel(t uint16) string {
	if s, ok := monitoredTypes[t]; ok {
		return s
	}
	return "other"
}

func rcodeLabel(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return strconv.Itoa(rc)
}
