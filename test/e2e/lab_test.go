package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/portal-net/portal/internal/sys/netns"
	"github.com/portal-net/portal/internal/testutil/netnstest"
)

// labNet is 198.51.100.0/24 (TEST-NET-2) on a bridge in the test's own
// namespace: the server's side is .1, node i is .10+i. Nothing routes out.
const labBridge = "lab0"

var labServerIP = net.IPv4(198, 51, 100, 1)

// lab makes a bridge and n node namespaces attached to it; all of it is
// removed when the test ends.
type lab struct {
	t     *testing.T
	nodes []string // namespace paths
}

func newLab(t *testing.T, n int) *lab {
	t.Helper()
	netnstest.Require(t)
	// A fixed MAC: a bridge without one takes the lowest of its ports'
	// and changes it when a port is added later (the outside client), so
	// the nodes' ARP entries for the server would point at a MAC nobody
	// answers for until they expire (~45 s of stalled API requests).
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: labBridge, HardwareAddr: net.HardwareAddr{0x02, 0, 0x5e, 0x1a, 0xb0, 0x01}}}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatalf("lab bridge: %v", err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(br) })
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: labServerIP, Mask: net.CIDRMask(24, 32)}}
	if err := netlink.AddrAdd(br, addr); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		t.Fatal(err)
	}
	l := &lab{t: t}
	for i := 1; i <= n; i++ {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("node%d", i))
		if err := netns.New(path); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = netns.Delete(path) })
		host := fmt.Sprintf("lab%d", i)
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: host, MasterIndex: br.Index}, PeerName: "eth0"}
		if err := netlink.LinkAdd(veth); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = netlink.LinkDel(veth) })
		peer, err := netlink.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		err = netlink.LinkSetNsFd(peer, int(f.Fd()))
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetUp(veth); err != nil {
			t.Fatal(err)
		}
		ip := l.nodeIP(i)
		err = netns.Do(path, func() error {
			for _, name := range []string{"lo", "eth0"} {
				lk, err := netlink.LinkByName(name)
				if err != nil {
					return err
				}
				if name == "eth0" {
					if err := netlink.AddrAdd(lk, &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(24, 32)}}); err != nil {
						return err
					}
				}
				if err := netlink.LinkSetUp(lk); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		l.nodes = append(l.nodes, path)
	}
	return l
}

func (l *lab) nodeIP(i int) net.IP { return net.IPv4(198, 51, 100, byte(10+i)) }

// startServer runs the lab's server, reachable on the bridge address, with
// extra flags.
func (l *lab) startServer(extra ...string) *server {
	l.t.Helper()
	return startServer(l.t, append([]string{"--bind-address", "0.0.0.0", "--tls-san", labServerIP.String()}, extra...)...)
}

// serverURL is where the lab's agents reach s.
func (l *lab) serverURL(s *server) string { return fmt.Sprintf("https://%s:%d", labServerIP, s.port) }

// join starts node i's agent, named name, joining s with its join token.
func (l *lab) join(s *server, i int, name string, extra ...string) *agentProc {
	l.t.Helper()
	tok, err := os.ReadFile(filepath.Join(s.dir, "join-token"))
	if err != nil {
		l.t.Fatal(err)
	}
	args := []string{"--server", l.serverURL(s), "--token", strings.TrimSpace(string(tok)), "--node-ip", l.nodeIP(i).String()}
	return startAgent(l.t, s, name, l.nodes[i-1], append(args, extra...)...)
}

// webPodOn is a manifest document (ending in "---") of an agnhost netexec
// pod on node, serving HTTP on 8080 and ready once it answers, with the
// labels given as a YAML flow map's content ("app: web, zone: a").
func webPodOn(name, node, labels string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, labels: {%s}}
spec:
  nodeName: %s
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: ["netexec", "--http-port=8080", "--udp-port=-1"]
    readinessProbe:
      httpGet: {path: /hostname, port: 8080}
      periodSeconds: 1
---
`, name, labels, node)
}

// in runs a command in node i's namespace.
func (l *lab) in(i int, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + l.nodes[i-1], "--"}, args...)...).CombinedOutput()
	return string(out), err
}

// Two nodes joined by a bridge: agents join with the server's token (CA
// verified by its hash), a Deployment spreads over both, and pods reach
// each other across nodes by IP, as the nodes reach pods on the other node.
func TestAgentTwoNodeLab(t *testing.T) {
	requirePortal(t)
	l := newLab(t, 2)
	s := l.startServer()
	tok, err := os.ReadFile(filepath.Join(s.dir, "join-token"))
	if err != nil {
		t.Fatal(err)
	}
	url := l.serverURL(s)
	var agents []*agentProc
	for i := 1; i <= 2; i++ {
		agents = append(agents, l.join(s, i, fmt.Sprintf("node-%d", i)))
	}
	c := s.client()
	for i, a := range agents {
		waitNodeReady(t, c, fmt.Sprintf("node-%d", i+1), a.log.String)
	}
	// A wrong token's CA hash is refused before anything is sent.
	bad := strings.TrimSpace(string(tok))
	bad = bad[:len(bad)-4] + "0000"
	if bad == strings.TrimSpace(string(tok)) {
		bad = bad[:len(bad)-4] + "1111"
	}
	out, err := exec.Command("nsenter", "--net="+l.nodes[0], "--", *portalBin, "agent", "--node-name", "intruder",
		"--server", url, "--token", bad, "--root-dir", t.TempDir(), "--run-dir", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "does not match the join token") {
		t.Errorf("agent with a wrong CA hash: %v\n%s", err, out)
	}

	s.mustKubectl("create", "deployment", "spread", "--image=registry.k8s.io/e2e-test-images/agnhost:2.53", "--replicas=4", "--", "/agnhost", "netexec", "--http-port=8080")
	if out, errOut, err := s.kubectl("rollout", "status", "deployment/spread", "--timeout=90s"); err != nil {
		t.Fatalf("rollout: %v %s%s\nnode-1:\n%s\nnode-2:\n%s", err, out, errOut, agents[0].log.String(), agents[1].log.String())
	}
	pods, err := c.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=spread"})
	if err != nil {
		t.Fatal(err)
	}
	byNode := map[string][]string{}
	ips := map[string]string{}
	for _, p := range pods.Items {
		byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p.Name)
		ips[p.Name] = p.Status.PodIP
	}
	if len(byNode["node-1"]) == 0 || len(byNode["node-2"]) == 0 {
		t.Fatalf("deployment not spread over both nodes: %v", byNode)
	}
	a, b := byNode["node-1"][0], byNode["node-2"][0]
	// pod → pod across nodes, both ways.
	for _, pair := range [][2]string{{a, b}, {b, a}} {
		got, errOut, err := s.kubectl("exec", pair[0], "--", "busybox", "wget", "-qO-", "http://"+net.JoinHostPort(ips[pair[1]], "8080")+"/hostname")
		if err != nil || strings.TrimSpace(got) != pair[1] {
			t.Errorf("%s → %s: %q %v %s", pair[0], pair[1], got, err, errOut)
		}
	}
	// node → pod on the other node, and pod → other node.
	if got, err := l.in(1, "busybox", "wget", "-qO-", "http://"+net.JoinHostPort(ips[b], "8080")+"/hostname"); err != nil || strings.TrimSpace(got) != b {
		t.Errorf("node-1 → %s: %q %v", b, got, err)
	}
	// A hostNetwork pod on node-2 serves on node-2's own address: pod on
	// node-1 → node-2, and node-1 → node-2's host network.
	hostNet := `apiVersion: v1
kind: Pod
metadata: {name: hostnet}
spec:
  nodeName: node-2
  hostNetwork: true
  containers:
  - name: web
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: ["netexec", "--http-port=18080"]
`
	s.mustKubectl("apply", "-f", writeFile(t, hostNet))
	if _, errOut, err := s.kubectl("wait", "--for=condition=Ready", "pod/hostnet", "--timeout=60s"); err != nil {
		t.Fatalf("hostnet pod: %v %s\n%s", err, errOut, agents[1].log.String())
	}
	if ip := strings.TrimSpace(s.mustKubectl("get", "pod", "hostnet", "-o", "jsonpath={.status.podIP}")); ip != l.nodeIP(2).String() {
		t.Errorf("hostNetwork pod IP %q, want the node's %s", ip, l.nodeIP(2))
	}
	node2 := fmt.Sprintf("http://%s:18080/hostname", l.nodeIP(2))
	if got, errOut, err := s.kubectl("exec", a, "--", "busybox", "wget", "-qO-", node2); err != nil || strings.TrimSpace(got) == "" {
		t.Errorf("pod %s → node-2: %q %v %s", a, got, err, errOut)
	}
	if got, err := l.in(1, "busybox", "wget", "-qO-", node2); err != nil || strings.TrimSpace(got) == "" {
		t.Errorf("node-1 → node-2 host network: %q %v", got, err)
	}
}
