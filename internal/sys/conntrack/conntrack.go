package conntrack

import (
	"errors"
	"fmt"
	"net/netip"
)

// Protocol numbers whose flows may be cleared.
const (
	UDP  uint8 = 17
	SCTP uint8 = 132
)

// ErrInvalid is returned for a service description that cannot be used.
var ErrInvalid = errors.New("conntrack: invalid service")

// Flow is the part of a conntrack entry the proxy reasons about. Orig is
// the tuple the first packet carried; Reply is the tuple expected back,
// so after DNAT ReplySrc is the backend the flow was sent to.
type Flow struct {
	Proto    uint8
	OrigSrc  netip.AddrPort
	OrigDst  netip.AddrPort
	ReplySrc netip.AddrPort
	ReplyDst netip.AddrPort
}

// NATFlow returns the flow the kernel records when a packet from client to
// frontend is sent on to backend (backend == frontend when no NAT
// happened, as for packets that arrived before the service had endpoints).
func NATFlow(proto uint8, client, frontend, backend netip.AddrPort) Flow {
	return Flow{Proto: proto, OrigSrc: client, OrigDst: frontend, ReplySrc: backend, ReplyDst: client}
}

func (f Flow) String() string {
	return fmt.Sprintf("proto=%d %s->%s reply %s->%s", f.Proto, f.OrigSrc, f.OrigDst, f.ReplySrc, f.ReplyDst)
}

// Frontend is an address clients send a service's traffic to: a ClusterIP,
// external IP or load-balancer IP with the service port, or a node port.
// An unspecified Addr (0.0.0.0 or ::) stands for every address of its
// family, as a NodePort does; prefer the node's own addresses when they
// are known, because a node port on "any" address also matches flows this
// node sends to the same port on other hosts.
type Frontend struct {
	Proto uint8
	Addr  netip.Addr
	Port  uint16
}

func (f Frontend) String() string {
	return fmt.Sprintf("%d/%s", f.Proto, netip.AddrPortFrom(f.Addr, f.Port))
}

// Service is a frontend with the endpoints that may serve it now. An
// endpoint with port 0 accepts every port of its address. No endpoints
// means every flow to the frontend is stale: pass a removed service's
// frontends that way.
type Service struct {
	Frontend
	Endpoints []netip.AddrPort
}

// Interface removes stale flows.
type Interface interface {
	// ClearStale deletes every UDP or SCTP flow whose original
	// destination is one of svcs' frontends and whose reply source is not
	// one of that frontend's endpoints, and returns how many it deleted.
	// A frontend listed twice is served by the union of its endpoints.
	ClearStale(svcs []Service) (int, error)
}

// Matcher decides which flows are stale for a set of services. It is pure
// and shared by the kernel implementation and Fake.
type Matcher struct {
	byFrontend map[Frontend][]netip.AddrPort
	v4, v6     bool
}

// NewMatcher validates svcs and indexes them by frontend.
func NewMatcher(svcs []Service) (*Matcher, error) {
	m := &Matcher{byFrontend: make(map[Frontend][]netip.AddrPort, len(svcs))}
	var errs []error
	for _, s := range svcs {
		fe := s.Frontend
		fe.Addr = fe.Addr.Unmap()
		if err := checkService(fe, s.Endpoints); err != nil {
			errs = append(errs, err)
			continue
		}
		if fe.Addr.Is4() {
			m.v4 = true
		} else {
			m.v6 = true
		}
		eps := m.byFrontend[fe]
		if eps == nil {
			eps = []netip.AddrPort{}
		}
		for _, ep := range s.Endpoints {
			eps = append(eps, netip.AddrPortFrom(ep.Addr().Unmap(), ep.Port()))
		}
		m.byFrontend[fe] = eps
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return m, nil
}

func checkService(fe Frontend, eps []netip.AddrPort) error {
	switch {
	case fe.Proto != UDP && fe.Proto != SCTP:
		return fmt.Errorf("%w: %s: protocol %d is not UDP or SCTP (TCP flows are never cleared)", ErrInvalid, fe, fe.Proto)
	case !fe.Addr.IsValid():
		return fmt.Errorf("%w: %s: no address (use 0.0.0.0 or :: for a node port on every address)", ErrInvalid, fe)
	case fe.Addr.Zone() != "":
		return fmt.Errorf("%w: %s: zoned address", ErrInvalid, fe)
	case fe.Port == 0:
		return fmt.Errorf("%w: %s: port 0", ErrInvalid, fe)
	}
	for _, ep := range eps {
		a := ep.Addr().Unmap()
		if !a.IsValid() || a.Is4() != fe.Addr.Is4() {
			return fmt.Errorf("%w: %s: endpoint %s is not of the frontend's family", ErrInvalid, fe, ep)
		}
	}
	return nil
}

// Families reports which address families hold frontends, so an
// implementation reads only the tables it needs.
func (m *Matcher) Families() (v4, v6 bool) { return m.v4, m.v6 }

// Stale reports whether f goes to one of the frontends but is not served
// by one of its endpoints. A frontend with the flow's exact address wins
// over a node port on every address, so a ClusterIP port that happens to
// equal some node port is judged by its own endpoints.
func (m *Matcher) Stale(f Flow) bool {
	if f.Proto != UDP && f.Proto != SCTP {
		return false
	}
	dst := f.OrigDst.Addr().Unmap()
	if !dst.IsValid() {
		return false
	}
	eps, ok := m.byFrontend[Frontend{Proto: f.Proto, Addr: dst, Port: f.OrigDst.Port()}]
	if !ok {
		wildcard := netip.IPv6Unspecified()
		if dst.Is4() {
			wildcard = netip.IPv4Unspecified()
		}
		eps, ok = m.byFrontend[Frontend{Proto: f.Proto, Addr: wildcard, Port: f.OrigDst.Port()}]
		if !ok {
			return false
		}
	}
	src := f.ReplySrc.Addr().Unmap()
	for _, ep := range eps {
		if ep.Addr() == src && (ep.Port() == 0 || ep.Port() == f.ReplySrc.Port()) {
			return false
		}
	}
	return true
}
