// Command bench-dns measures portal's cluster DNS (`portal agent --dns-only`)
// beside upstream CoreDNS (kubernetes, forward and cache plugins) in the
// same run, on the same API data: queries/s and latency over UDP for a
// ClusterIP name, a named port's SRV, a headless name, an NXDOMAIN in the
// zone and an external name answered from the cache; RSS after the loads;
// and the time from exec to the first correct answer. Both servers, the
// fake upstream resolver and the load generator listen and send on
// 127.0.0.1 only. See README.md in this directory.
package main
