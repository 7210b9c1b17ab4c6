package main

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The statistics block of dnsperf 2.10 as Debian ships it.
const perfOutput = `DNS Performance Testing Tool
Version 2.10.0

[Status] Command line: dnsperf -s 127.0.0.1 -p 5353 -d q.txt -l 3
[Status] Sending queries (to 127.0.0.1:5353)
[Status] Started at: Tue Dec  1 20:40:00 2026
[Status] Stopping after 3.000000 seconds
[Status] Testing complete (time limit)

Statistics:

  Queries sent:         210337
  Queries completed:    210330 (100.00%)
  Queries lost:         7 (0.00%)

  Response codes:       NOERROR 210300 (99.99%), NXDOMAIN 30 (0.01%)
  Average packet size:  request 45, response 61
  Run time (s):         3.000812
  Queries per second:   70091.694522

  Average Latency (s):  0.001401 (min 0.000021, max 0.031772)
  Latency StdDev (s):   0.000745
`

func TestParseDNSPerf(t *testing.T) {
	r, err := parseDNSPerf(perfOutput)
	if err != nil {
		t.Fatal(err)
	}
	if r.sent != 210337 || r.completed != 210330 || r.lost != 7 || int(r.qps) != 70091 {
		t.Errorf("parsed %+v", r)
	}
	if r.avgLatency != 1401*time.Microsecond {
		t.Errorf("average latency %s", r.avgLatency)
	}
	if r.rcodes["NOERROR"] != 210300 || r.rcodes["NXDOMAIN"] != 30 {
		t.Errorf("rcodes %v", r.rcodes)
	}
	if err := r.check(dns.RcodeSuccess); err == nil || !strings.Contains(err.Error(), "want all NOERROR") {
		t.Errorf("check with 30 NXDOMAIN answers: %v", err)
	}
	r.rcodes = map[string]int{"NOERROR": r.completed}
	if err := r.check(dns.RcodeSuccess); err != nil {
		t.Errorf("check: %v", err)
	}
	if _, err := parseDNSPerf("dnsperf: invalid option\n"); err == nil {
		t.Error("no statistics parsed without error")
	}
}
