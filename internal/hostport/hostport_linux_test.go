package hostport

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/portal-net/portal/internal/testutil/netnstest"
	"github.com/portal-net/portal/internal/testutil/proxylab"
)

func TestMain(m *testing.M) { netnstest.Main(m) }

// Packets through the table, in the proxy lab: the client outside, the
// node itself, and a pod reaching its own host port.
func TestDatapath(t *testing.T) {
	l := proxylab.New(t, "a", "b")
	l.Serve(t)
	nft, err := knftables.New(knftables.IPv4Family, TableName)
	if err != nil {
		t.Fatal(err)
	}
	tbl := New(nft, "ptbr0")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t.Cleanup(func() {
		if err := tbl.Delete(context.Background()); err != nil {
			t.Errorf("delete: %v", err)
		}
	})
	a, b := l.PodIP["a"], l.PodIP["b"]
	node := netip.MustParseAddr(proxylab.NodeIP)
	ms := []Mapping{
		{HostPort: 8081, Protocol: corev1.ProtocolTCP, PodIP: a, ContainerPort: 8080},
		{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 8082, Protocol: corev1.ProtocolTCP, PodIP: b, ContainerPort: 8080},
		{HostIP: node, HostPort: 8082, Protocol: corev1.ProtocolTCP, PodIP: a, ContainerPort: 8080},
		{HostIP: node, HostPort: 8083, Protocol: corev1.ProtocolUDP, PodIP: a, ContainerPort: 8080},
	}
	if err := tbl.Sync(ctx, ms); err != nil {
		t.Fatal(err)
	}
	get := func(ns, addr, want string) {
		t.Helper()
		got, err := proxylab.Get(ns, "", addr)
		if err != nil || got != want {
			t.Errorf("GET %s from %q: %q, %v; want %q", addr, ns, got, err, want)
		}
	}
	// From outside the client's address is kept.
	get(l.Client, proxylab.NodeIP+":8081", "a "+proxylab.ClientIP)
	// The same port on two host IPs goes to two pods.
	get(l.Client, proxylab.NodeIP+":8082", "a "+proxylab.ClientIP)
	get("", "127.0.0.1:8082", "b 10.244.1.1")
	// Any-address mappings include loopback.
	get("", "127.0.0.1:8081", "a 10.244.1.1")
	// A pod reaching its own host port (hairpin).
	get(l.Pods["a"], proxylab.NodeIP+":8081", "a 10.244.1.1")
	if got, err := proxylab.Ask(l.Client, proxylab.NodeIP+":8083"); err != nil || got != "a "+proxylab.ClientIP {
		t.Errorf("UDP %s:8083: %q, %v", proxylab.NodeIP, got, err)
	}
	// Only TCP on 8081.
	if got, err := proxylab.Ask(l.Client, proxylab.NodeIP+":8081"); err == nil {
		t.Errorf("UDP to a TCP host port answered %q", got)
	}

	// Mappings removed are gone at once.
	if err := tbl.Sync(ctx, ms[1:2]); err != nil {
		t.Fatal(err)
	}
	if got, err := proxylab.Get(l.Client, "", proxylab.NodeIP+":8081"); err == nil {
		t.Errorf("removed mapping still answers: %q", got)
	}
	get("", "127.0.0.1:8082", "b 10.244.1.1")
	out, err := nft.List(ctx, "chains")
	if err != nil || !strings.Contains(strings.Join(out, " "), "mappings") {
		t.Errorf("chains %v, %v", out, err)
	}
}
