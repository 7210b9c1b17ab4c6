package members

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"
)

// Run takes part in the membership until ctx ends: it sends a heartbeat
// every Interval (and at once when this node's readiness changes),
// receives the peers' heartbeats and expires silent peers on a timer.
// When ctx ends it sends a leaving heartbeat to every peer, so they fail
// over without waiting for DeadAfter, closes the socket and returns nil.
// Run may be called once.
func (m *Members) Run(ctx context.Context) error {
	if m.conn == nil {
		return errors.New("members: Run without a socket (use New)")
	}
	if !m.started.CompareAndSwap(false, true) {
		return errors.New("members: Run called twice")
	}
	m.begin(m.now())
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		m.readLoop()
	}()

	timer := time.NewTimer(0)
	defer timer.Stop()
	var (
		nextSend  time.Time // zero: send on the first round
		sentReady bool
	)
	for {
		select {
		case <-ctx.Done():
			if !m.skipLeave.Load() {
				m.send(heartbeat{Leaving: true})
			}
			_ = m.conn.Close()
			<-readDone
			m.end()
			return nil
		case <-timer.C:
		case <-m.kick:
		}
		now := m.now()
		m.mu.Lock()
		m.refreshLocked(now)
		ready := m.selfLiveLocked(now)
		wake := m.nextDeadlineLocked(now)
		m.mu.Unlock()
		// The ready flag is our own liveness, so peers do not count us
		// while we warm up; a change goes out at once.
		if !now.Before(nextSend) || ready != sentReady {
			m.send(heartbeat{Ready: ready})
			sentReady = ready
			nextSend = now.Add(m.interval)
		}
		if wake.IsZero() || nextSend.Before(wake) {
			wake = nextSend
		}
		timer.Reset(max(wake.Sub(m.now()), 0))
	}
}

// begin starts the warm-up: self is not live until DeadAfter has passed,
// by when every live peer has been heard, so a fresh node does not claim
// addresses another live node comes first for.
func (m *Members) begin(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.running = true
	m.warmEnd = now.Add(m.deadAfter)
	m.refreshLocked(now)
}

// end forgets everything: without Run nothing is heard, and a stale view
// must not decide who announces.
func (m *Members) end() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.running = false
	for _, p := range m.peers {
		p.heard, p.ready = false, false
	}
	m.refreshLocked(m.now())
}

func (m *Members) readLoop() {
	buf := make([]byte, maxPacketLen+1) // one more: oversized reads fail decode
	for {
		n, from, err := m.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient (e.g. ENOBUFS); keep listening but do not spin.
			m.log.V(2).Info("Reading heartbeat", "err", err)
			time.Sleep(m.interval / 10)
			continue
		}
		m.receive(buf[:n], from)
	}
}

// seq numbers packets of this incarnation; only Run's goroutine sends.
func (m *Members) nextSeq() uint64 {
	m.seqNo++
	return m.seqNo
}

// send sends hb (name, incarnation and sequence filled in) to every peer.
func (m *Members) send(hb heartbeat) {
	hb.Name, hb.Incarnation, hb.Seq = m.self, m.inc, m.nextSeq()
	pkt, err := encode(hb, m.key)
	if err != nil { // Self was validated in New
		m.log.Error(err, "Encoding heartbeat")
		return
	}
	type target struct {
		name string
		addr netip.Addr
	}
	m.mu.Lock()
	targets := make([]target, 0, len(m.peers))
	for name, p := range m.peers {
		targets = append(targets, target{name, p.addr})
	}
	m.mu.Unlock()

	// A full send buffer must not stall expiry checks for long.
	_ = m.conn.SetWriteDeadline(time.Now().Add(m.interval))
	failed := map[string]error{}
	for _, t := range targets {
		if _, err := m.conn.WriteToUDPAddrPort(pkt, netip.AddrPortFrom(t.addr, uint16(m.port))); err != nil {
			m.sendErrors.Add(1)
			failed[t.name] = err
			continue
		}
		m.sent.Add(1)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range targets {
		p := m.peers[t.name]
		if p == nil || p.addr != t.addr {
			continue
		}
		err, bad := failed[t.name]
		switch {
		case bad && !p.sendFailing:
			m.log.Info("Cannot send heartbeats to peer", "peer", t.name, "addr", t.addr, "err", err)
		case !bad && p.sendFailing:
			m.log.Info("Sending heartbeats to peer again", "peer", t.name)
		}
		p.sendFailing = bad
	}
}
