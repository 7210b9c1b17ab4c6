package l4

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portal-net/portal/internal/proxy/userspace/sched"
)

// udpServer answers each datagram with "<name> <payload>".
type udpServer struct {
	name string
	pc   net.PacketConn
	done chan struct{}
}

func newUDPServer(t *testing.T, name string) *udpServer {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &udpServer{name: name, pc: pc, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 2048)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(name+" "+string(buf[:n])), addr)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-s.done })
	return s
}

func (s *udpServer) Addr() netip.AddrPort { return addrPortOf(s.pc.LocalAddr()) }

func startUDP(t *testing.T, cfg UDPConfig, backends []sched.Backend) *UDPProxy {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewUDPProxy(pc, cfg)
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	serve(t, p, backends)
	return p
}

// udpClient is one client address talking to the proxy.
type udpClient struct {
	t     *testing.T
	conn  *net.UDPConn
	proxy netip.AddrPort
}

func newUDPClient(t *testing.T, p *UDPProxy) *udpClient {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &udpClient{t: t, conn: c, proxy: addrPortOf(p.Addr())}
}

// ask sends msg and returns the reply, or "" if none came within wait.
// The reply must come from the proxy's address.
func (c *udpClient) ask(msg string, wait time.Duration) string {
	c.t.Helper()
	if _, err := c.conn.WriteToUDPAddrPort([]byte(msg), c.proxy); err != nil {
		c.t.Fatal(err)
	}
	c.conn.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 2048)
	n, from, err := c.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		return ""
	}
	if addrPortOf(net.UDPAddrFromAddrPort(from)) != c.proxy {
		c.t.Errorf("reply from %v, want the proxy %v", from, c.proxy)
	}
	return string(buf[:n])
}

func TestUDPEcho(t *testing.T) {
	checkGoroutines(t)
	a, b := newUDPServer(t, "a"), newUDPServer(t, "b")
	p := startUDP(t, UDPConfig{Config: Config{Scheduler: &fakeSched{}}}, backendsOf(a.Addr(), b.Addr()))

	// Each client keeps its session's backend; new clients go round robin.
	for i, want := range []string{"a", "b", "a"} {
		c := newUDPClient(t, p)
		for j := range 3 {
			msg := strings.Repeat("x", j+1)
			if got := c.ask(msg, 2*time.Second); got != want+" "+msg {
				t.Fatalf("client %d datagram %d: reply %q, want %q", i, j, got, want+" "+msg)
			}
		}
	}
	st := p.Stats()
	if st.Sessions != 3 {
		t.Errorf("Sessions = %d, want 3", st.Sessions)
	}
	if sa, _ := statsFor(st, a.Addr()); sa.Active != 2 || sa.Total != 2 {
		t.Errorf("a stats = %+v, want 2 active sessions", sa)
	}
}

func TestUDPIdleExpiry(t *testing.T) {
	checkGoroutines(t)
	a, b := newUDPServer(t, "a"), newUDPServer(t, "b")
	const idle = 200 * time.Millisecond
	p := startUDP(t, UDPConfig{Config: Config{Scheduler: &fakeSched{}}, IdleTimeout: idle}, backendsOf(a.Addr(), b.Addr()))
	c := newUDPClient(t, p)

	start := time.Now()
	if got := c.ask("1", 2*time.Second); got != "a 1" {
		t.Fatalf("reply %q", got)
	}
	// Traffic within the idle timeout keeps the session.
	for range 3 {
		time.Sleep(idle / 2)
		if got := c.ask("2", 2*time.Second); got != "a 2" {
			t.Fatalf("reply %q during the session, want a 2", got)
		}
	}
	if time.Since(start) < idle {
		t.Fatal("test too slow to tell")
	}
	last := time.Now()
	eventually(t, "session to expire", func() bool { return p.Stats().Sessions == 0 })
	if waited := time.Since(last); waited < idle/2 {
		t.Errorf("session ended %v after the last datagram, want about %v", waited, idle)
	}
	// The same client now gets a new session, from the next backend.
	if got := c.ask("3", 2*time.Second); got != "b 3" {
		t.Errorf("reply after expiry %q, want b 3", got)
	}
}

func TestUDPSessionCap(t *testing.T) {
	checkGoroutines(t)
	a := newUDPServer(t, "a")
	p := startUDP(t, UDPConfig{Config: Config{Scheduler: &fakeSched{}}, MaxSessions: 2}, backendsOf(a.Addr()))
	var clients []*udpClient
	for range 3 {
		clients = append(clients, newUDPClient(t, p))
	}
	for i, c := range clients[:2] {
		if got := c.ask("hi", 2*time.Second); got != "a hi" {
			t.Fatalf("client %d reply %q", i, got)
		}
	}
	if got := clients[2].ask("hi", 300*time.Millisecond); got != "" {
		t.Errorf("third client got %q beyond the cap", got)
	}
	// Existing sessions still work.
	if got := clients[0].ask("again", 2*time.Second); got != "a again" {
		t.Errorf("existing client reply %q", got)
	}
	if st := p.Stats(); st.Dropped != 1 || st.Sessions != 2 {
		t.Errorf("Dropped = %d, Sessions = %d; want 1, 2", st.Dropped, st.Sessions)
	}
}

func TestUDPBackendRemovedEndsSessions(t *testing.T) {
	checkGoroutines(t)
	a, b := newUDPServer(t, "a"), newUDPServer(t, "b")
	p := startUDP(t, UDPConfig{Config: Config{Scheduler: &fakeSched{}}}, backendsOf(a.Addr(), b.Addr()))
	c := newUDPClient(t, p)
	if got := c.ask("1", 2*time.Second); got != "a 1" {
		t.Fatalf("reply %q", got)
	}
	p.SetBackends(backendsOf(b.Addr()))
	if got := c.ask("2", 2*time.Second); got != "b 2" {
		t.Errorf("reply after removal %q, want b 2", got)
	}
	eventually(t, "removed backend to be forgotten", func() bool {
		_, ok := statsFor(p.Stats(), a.Addr())
		return !ok
	})
}

func TestUDPRefusingBackendIsBackedOff(t *testing.T) {
	checkGoroutines(t)
	a := newUDPServer(t, "a")
	// A UDP port with nothing on it answers with ICMP port unreachable.
	dpc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := addrPortOf(dpc.LocalAddr())
	dpc.Close()
	p := startUDP(t, UDPConfig{Config: Config{Scheduler: &fakeSched{}, FailThreshold: 1}}, backendsOf(dead, a.Addr()))

	c := newUDPClient(t, p)
	// The first datagram goes to the dead backend and is lost; the session
	// ends on the ICMP error and the retry reaches a.
	var got string
	for i := 0; i < 5 && got == ""; i++ {
		got = c.ask("hi", 300*time.Millisecond)
	}
	if got != "a hi" {
		t.Fatalf("reply %q, want a hi", got)
	}
	// Backed off: other new clients go straight to a.
	for range 3 {
		if got := newUDPClient(t, p).ask("hi", 2*time.Second); got != "a hi" {
			t.Errorf("new client reply %q, want a hi", got)
		}
	}
	if st, _ := statsFor(p.Stats(), dead); st.Failures != 1 {
		t.Errorf("dead backend stats %+v, want 1 failure", st)
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	checkGoroutines(t)
	ta, ua := newLineServer(t, "a"), newUDPServer(t, "a")
	tcp := startTCP(t, TCPConfig{Config: Config{Scheduler: &fakeSched{}}}, backendsOf(ta.Addr()))
	udp := startUDP(t, UDPConfig{Config: Config{Scheduler: &fakeSched{}}}, backendsOf(ua.Addr()))

	var wg sync.WaitGroup
	var conns []net.Conn
	for range 10 {
		c, err := net.Dial("tcp", tcp.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			c.Write([]byte("x\n"))
			c.Read(make([]byte, 64))
		}()
	}
	wg.Wait()
	for range 10 {
		if got := newUDPClient(t, udp).ask("x", 2*time.Second); got != "a x" {
			t.Fatalf("udp reply %q", got)
		}
	}
	if tcp.Stats().Sessions != 10 || udp.Stats().Sessions != 10 {
		t.Fatalf("sessions tcp %d udp %d, want 10 each", tcp.Stats().Sessions, udp.Stats().Sessions)
	}
	tcp.Close()
	udp.Close()
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Error("TCP client still connected after Close")
		}
		c.Close()
	}
	if tcp.Stats().Sessions != 0 || udp.Stats().Sessions != 0 {
		t.Errorf("sessions after Close: tcp %d udp %d", tcp.Stats().Sessions, udp.Stats().Sessions)
	}
	// checkGoroutines, at cleanup, compares the count with the start.
}
