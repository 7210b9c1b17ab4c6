package l2

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// New opens the interface's packet socket and starts answering. It must
// run in the network namespace of the interface (the socket stays
// there; later calls may come from any thread).
func New(cfg Config) (*Announcer, error) {
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("l2: interface %q: %w", cfg.Interface, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("l2: interface %q has no Ethernet address", cfg.Interface)
	}
	conn, err := openPacketSocket(ifi.Index)
	if err != nil {
		return nil, fmt.Errorf("l2: interface %q: %w", cfg.Interface, err)
	}
	return newAnnouncer(cfg, conn, ifi.HardwareAddr), nil
}

// filter passes received ARP frames and ICMPv6 Neighbor Solicitations
// without IPv6 extension headers (NDP uses none), and drops the frames
// this host sends, which an ETH_P_ALL socket would otherwise see too.
func filter() ([]unix.SockFilter, error) {
	const (
		drop   = 0
		accept = 0x40000
	)
	raw, err := bpf.Assemble([]bpf.Instruction{
		/* 0 */ bpf.LoadExtension{Num: bpf.ExtType},
		/* 1 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.PACKET_OUTGOING, SkipTrue: 8},
		/* 2 */ bpf.LoadAbsolute{Off: 12, Size: 2},
		/* 3 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: etherTypeARP, SkipTrue: 5},
		/* 4 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: etherTypeIPv6, SkipTrue: 5},
		/* 5 */ bpf.LoadAbsolute{Off: ethHeaderLen + 6, Size: 1},
		/* 6 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: protoICMPv6, SkipTrue: 3},
		/* 7 */ bpf.LoadAbsolute{Off: ethHeaderLen + ipv6HeaderLen, Size: 1},
		/* 8 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: icmpv6NeighborSolicitation, SkipTrue: 1},
		/* 9 */ bpf.RetConstant{Val: accept},
		/* 10 */ bpf.RetConstant{Val: drop},
	})
	if err != nil {
		return nil, err
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out, nil
}

type packetSocket struct {
	f       *os.File
	rc      syscall.RawConn
	ifindex int
	// mcast is an unbound UDPv6 socket used only to hold multicast
	// memberships: joining through it makes the kernel accept the
	// group's frames on the NIC and send MLD reports, so snooping
	// switches forward Neighbor Solicitations to us. -1 without IPv6.
	mcast   int
	mcastEr error
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func openPacketSocket(ifindex int) (*packetSocket, error) {
	prog, err := filter()
	if err != nil {
		return nil, fmt.Errorf("assemble filter: %w", err)
	}
	// Protocol 0 receives nothing until bind, so no frame slips in
	// before the filter is attached.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("attach filter: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind packet socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "l2-packet")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	s := &packetSocket{
		f: f, rc: rc, ifindex: ifindex, mcast: -1,
	}
	s.mcast, s.mcastEr = unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if s.mcastEr != nil {
		s.mcast = -1
	}
	return s, nil
}

func (s *packetSocket) ReadFrame(buf []byte) (int, error) {
	var n int
	var rerr error
	err := s.rc.Read(func(fd uintptr) bool {
		n, rerr = unix.Read(int(fd), buf)
		return !errors.Is(rerr, unix.EAGAIN)
	})
	if err != nil {
		return 0, err
	}
	return n, rerr
}

func (s *packetSocket) WriteFrame(frame []byte) error {
	if len(frame) < ethHeaderLen {
		return fmt.Errorf("frame of %d bytes is too short", len(frame))
	}
	to := &unix.SockaddrLinklayer{
		Ifindex:  s.ifindex,
		Protocol: htons(uint16(frame[12])<<8 | uint16(frame[13])),
		Halen:    6,
	}
	copy(to.Addr[:], frame[0:6])
	var werr error
	err := s.rc.Write(func(fd uintptr) bool {
		werr = unix.Sendto(int(fd), frame, 0, to)
		return !errors.Is(werr, unix.EAGAIN)
	})
	if err != nil {
		return err
	}
	return werr
}

func (s *packetSocket) membership(opt int, group netip.Addr) error {
	if s.mcast < 0 {
		return fmt.Errorf("no IPv6 socket for multicast membership: %w", s.mcastEr)
	}
	mreq := &unix.IPv6Mreq{Multiaddr: group.As16(), Interface: uint32(s.ifindex)}
	if err := unix.SetsockoptIPv6Mreq(s.mcast, unix.IPPROTO_IPV6, opt, mreq); err != nil {
		return fmt.Errorf("multicast group %v: %w", group, err)
	}
	return nil
}

func (s *packetSocket) JoinGroup(group netip.Addr) error {
	return s.membership(unix.IPV6_JOIN_GROUP, group)
}

func (s *packetSocket) LeaveGroup(group netip.Addr) error {
	return s.membership(unix.IPV6_LEAVE_GROUP, group)
}

func (s *packetSocket) Close() error {
	err := s.f.Close()
	if s.mcast >= 0 {
		err = errors.Join(err, unix.Close(s.mcast))
		s.mcast = -1
	}
	return err
}
