// Package sysctl owns reading and writing kernel parameters under
// /proc/sys (net.ipv4.ip_forward, net.ipv4.conf.all.route_localnet,
// net.bridge.bridge-nf-call-iptables, ...). The proxy and the agent check
// and set them through Interface so their logic can be tested with Fake.
package sysctl
