package l2

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeConn stands in for the packet socket: frames fed to in are
// "received", written frames and group changes are recorded.
type fakeConn struct {
	in      chan []byte
	closed  chan struct{}
	joinErr error

	mu      sync.Mutex
	written [][]byte
	joins   []netip.Addr
	leaves  []netip.Addr
}

func newFakeConn() *fakeConn {
	return &fakeConn{in: make(chan []byte), closed: make(chan struct{})}
}

func (c *fakeConn) ReadFrame(buf []byte) (int, error) {
	select {
	case f := <-c.in:
		return copy(buf, f), nil
	case <-c.closed:
		return 0, errors.New("closed")
	}
}

func (c *fakeConn) WriteFrame(f []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.written = append(c.written, slices.Clone(f))
	return nil
}

func (c *fakeConn) JoinGroup(g netip.Addr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.joinErr != nil {
		return c.joinErr
	}
	c.joins = append(c.joins, g)
	return nil
}

func (c *fakeConn) LeaveGroup(g netip.Addr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leaves = append(c.leaves, g)
	return nil
}

func (c *fakeConn) Close() error { close(c.closed); return nil }

func (c *fakeConn) snapshot() (written [][]byte, joins, leaves []netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.written), slices.Clone(c.joins), slices.Clone(c.leaves)
}

func newFakeAnnouncer(t *testing.T, cfg Config) (*Announcer, *fakeConn) {
	t.Helper()
	c := newFakeConn()
	a := newAnnouncer(cfg, c, ourMAC)
	t.Cleanup(func() { a.Close() })
	return a, c
}

func TestAnnounceAddresses(t *testing.T) {
	tests := []struct {
		ip      string
		want    string // announced as; "" means Announce fails
		wantErr bool
	}{
		{ip: "192.0.2.100", want: "192.0.2.100"},
		{ip: "::ffff:192.0.2.100", want: "192.0.2.100"},
		{ip: "2001:db8::100", want: "2001:db8::100"},
		{ip: "fe80::1%eth0", want: "fe80::1"},
		{ip: "0.0.0.0", wantErr: true},
		{ip: "::", wantErr: true},
		{ip: "224.0.0.1", wantErr: true},
		{ip: "ff02::1", wantErr: true},
		{ip: "127.0.0.1", wantErr: true},
		{ip: "255.255.255.255", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			a, _ := newFakeAnnouncer(t, Config{GratuitousCount: -1})
			err := a.Announce(netip.MustParseAddr(tt.ip))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Announce(%s) error = %v, want error %v", tt.ip, err, tt.wantErr)
			}
			got := a.Announced()
			if tt.wantErr {
				if len(got) != 0 {
					t.Errorf("Announced() = %v after failed Announce", got)
				}
				return
			}
			if len(got) != 1 || got[0] != netip.MustParseAddr(tt.want) {
				t.Errorf("Announced() = %v, want [%s]", got, tt.want)
			}
			a.Withdraw(netip.MustParseAddr(tt.ip))
			if got := a.Announced(); len(got) != 0 {
				t.Errorf("Announced() after Withdraw(%s) = %v", tt.ip, got)
			}
		})
	}
}

func TestGratuitousBurst(t *testing.T) {
	tests := []struct {
		name       string
		ip         netip.Addr
		count      int
		wantFrames int
	}{
		{"ipv4 default count", lbIP4, 0, 2 * DefaultGratuitousCount},
		{"ipv4 five", lbIP4, 5, 10},
		{"ipv4 none", lbIP4, -1, 0},
		{"ipv6 three", lbIP6, 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, c := newFakeAnnouncer(t, Config{GratuitousCount: tt.count, GratuitousInterval: time.Millisecond})
			if err := a.Announce(tt.ip); err != nil {
				t.Fatal(err)
			}
			if err := a.Announce(tt.ip); err != nil { // again: no second burst
				t.Fatal(err)
			}
			deadline := time.Now().Add(time.Second)
			for a.Stats().Addresses[tt.ip].GratuitousSent < uint64(tt.wantFrames) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond) // room for extra frames to show up
			written, _, _ := c.snapshot()
			if len(written) != tt.wantFrames {
				t.Fatalf("wrote %d frames, want %d", len(written), tt.wantFrames)
			}
			var want [][]byte
			if tt.ip.Is4() {
				want = gratuitousARP(ourMAC, tt.ip)
			} else {
				want = unsolicitedNA(ourMAC, tt.ip)
			}
			for i, f := range written {
				if w := want[i%len(want)]; !bytes.Equal(f, w) {
					t.Errorf("frame %d = %x, want %x", i, f, w)
				}
			}
			if got := a.Stats().Addresses[tt.ip].GratuitousSent; got != uint64(tt.wantFrames) {
				t.Errorf("GratuitousSent = %d, want %d", got, tt.wantFrames)
			}
		})
	}
}

func TestWithdrawStopsBurst(t *testing.T) {
	a, c := newFakeAnnouncer(t, Config{GratuitousCount: 1000, GratuitousInterval: 5 * time.Millisecond})
	if err := a.Announce(lbIP4); err != nil {
		t.Fatal(err)
	}
	a.Withdraw(lbIP4)
	written, _, _ := c.snapshot()
	time.Sleep(50 * time.Millisecond)
	after, _, _ := c.snapshot()
	if len(after) != len(written) {
		t.Errorf("burst went on after Withdraw: %d frames, then %d", len(written), len(after))
	}
}

func TestAnswersThroughConn(t *testing.T) {
	a, c := newFakeAnnouncer(t, Config{GratuitousCount: -1})
	if err := a.Announce(lbIP4); err != nil {
		t.Fatal(err)
	}
	c.in <- arpFrame(arpRequest, broadcastMAC, peerMAC, peerIP4, zeroMAC, lbIP4)
	c.in <- arpFrame(arpRequest, broadcastMAC, peerMAC, peerIP4, zeroMAC, otherIP4)
	c.in <- neighborSolicit(peerIP6, lbIP6, nil)                        // not announced
	c.in <- arpFrame(arpReply, ourMAC, peerMAC, lbIP4, ourMAC, peerIP4) // not a question
	a.Close()                                                           // waits for the loop to finish the frames
	written, _, _ := c.snapshot()
	want := arpFrame(arpReply, peerMAC, ourMAC, lbIP4, peerMAC, peerIP4)
	if len(written) != 1 || !bytes.Equal(written[0], want) {
		t.Errorf("wrote %x, want one ARP reply %x", written, want)
	}
	st := a.Stats()
	if got := st.Addresses[lbIP4].RequestsAnswered; got != 1 {
		t.Errorf("RequestsAnswered = %d, want 1", got)
	}
	if st.RequestsIgnored != 2 {
		t.Errorf("RequestsIgnored = %d, want 2", st.RequestsIgnored)
	}
}

func TestSolicitedNodeMembership(t *testing.T) {
	// Both addresses end in 00:0100, so they share one solicited-node
	// group: it is joined once and left with the last of them.
	x, y := netip.MustParseAddr("2001:db8:1::100"), netip.MustParseAddr("2001:db8:2::100")
	group := netip.MustParseAddr("ff02::1:ff00:100")
	a, c := newFakeAnnouncer(t, Config{GratuitousCount: -1})
	steps := []struct {
		do                    func() error
		wantJoins, wantLeaves int
	}{
		{func() error { return a.Announce(x) }, 1, 0},
		{func() error { return a.Announce(y) }, 1, 0},
		{func() error { a.Withdraw(x); return nil }, 1, 0},
		{func() error { a.Withdraw(y); return nil }, 1, 1},
		{func() error { return a.Announce(lbIP4) }, 1, 1},
	}
	for i, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		_, joins, leaves := c.snapshot()
		if len(joins) != s.wantJoins || len(leaves) != s.wantLeaves {
			t.Fatalf("step %d: joins %v leaves %v, want %d and %d", i, joins, leaves, s.wantJoins, s.wantLeaves)
		}
		for _, g := range append(joins, leaves...) {
			if g != group {
				t.Errorf("step %d: group %v, want %v", i, g, group)
			}
		}
	}
}

func TestAnnounceFailsWhenGroupCannotBeJoined(t *testing.T) {
	a, c := newFakeAnnouncer(t, Config{GratuitousCount: -1})
	c.joinErr = errors.New("ipv6 disabled")
	if err := a.Announce(lbIP6); err == nil {
		t.Fatal("Announce succeeded without the solicited-node group")
	}
	if got := a.Announced(); len(got) != 0 {
		t.Errorf("Announced() = %v, want none", got)
	}
}
