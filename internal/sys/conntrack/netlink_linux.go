package conntrack

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Netlink is Interface on the kernel table of the calling process's
// network namespace.
type Netlink struct{}

var _ Interface = (*Netlink)(nil)

// New returns the kernel implementation.
func New() *Netlink { return &Netlink{} }

// ClearStale reads each needed family's table once and deletes the stale
// flows. A flow that vanished between the read and its deletion counts as
// deleted.
func (n *Netlink) ClearStale(svcs []Service) (int, error) {
	m, err := NewMatcher(svcs)
	if err != nil {
		return 0, err
	}
	v4, v6 := m.Families()
	total := 0
	for _, fam := range []struct {
		want bool
		f    netlink.InetFamily
	}{{v4, unix.AF_INET}, {v6, unix.AF_INET6}} {
		if !fam.want {
			continue
		}
		d, err := netlink.ConntrackDeleteFilters(netlink.ConntrackTable, fam.f, staleFilter{m})
		total += int(d)
		if err != nil {
			return total, fmt.Errorf("conntrack: clear stale flows (family %d): %w", fam.f, err)
		}
	}
	return total, nil
}

// List returns the UDP and SCTP flows of both families.
func (n *Netlink) List() ([]Flow, error) {
	var out []Flow
	for _, fam := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		flows, err := netlink.ConntrackTableList(netlink.ConntrackTable, fam)
		if err != nil {
			return nil, fmt.Errorf("conntrack: list (family %d): %w", fam, err)
		}
		for _, f := range flows {
			if p := f.Forward.Protocol; p == UDP || p == SCTP {
				out = append(out, fromNetlink(f))
			}
		}
	}
	return out, nil
}

type staleFilter struct{ m *Matcher }

func (s staleFilter) MatchConntrackFlow(f *netlink.ConntrackFlow) bool {
	return s.m.Stale(fromNetlink(f))
}

func fromNetlink(f *netlink.ConntrackFlow) Flow {
	return Flow{
		Proto:    f.Forward.Protocol,
		OrigSrc:  addrPort(f.Forward.SrcIP, f.Forward.SrcPort),
		OrigDst:  addrPort(f.Forward.DstIP, f.Forward.DstPort),
		ReplySrc: addrPort(f.Reverse.SrcIP, f.Reverse.SrcPort),
		ReplyDst: addrPort(f.Reverse.DstIP, f.Reverse.DstPort),
	}
}

func addrPort(ip net.IP, port uint16) netip.AddrPort {
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a.Unmap(), port)
}
