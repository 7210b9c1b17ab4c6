package l2

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// Wire constants. Frames are plain Ethernet II without VLAN tags: the
// kernel strips an offloaded tag before a packet socket sees the frame.
const (
	etherTypeARP  = 0x0806
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd

	ethHeaderLen  = 14
	arpLen        = 28
	ipv6HeaderLen = 40

	arpRequest = 1
	arpReply   = 2

	protoICMPv6 = 58

	icmpv6NeighborSolicitation  = 135
	icmpv6NeighborAdvertisement = 136

	ndOptSourceLinkAddr = 1
	ndOptTargetLinkAddr = 2

	naFlagSolicited = 0x40
	naFlagOverride  = 0x20

	// nsMinLen is the ICMPv6 part of a Neighbor Solicitation without
	// options: type, code, checksum, reserved, target.
	nsMinLen = 24
	naLen    = 24 + 8 // with the target link-layer address option
)

var (
	broadcastMAC   = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	allNodesMAC    = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
	allNodesIPv6   = netip.MustParseAddr("ff02::1")
	unspecifiedV6  = netip.IPv6Unspecified()
	zeroMAC        = net.HardwareAddr{0, 0, 0, 0, 0, 0}
	solicitedNodeP = netip.MustParseAddr("ff02::1:ff00:0").As16()
)

// respond looks at one received frame and, when it asks for an address
// that announced reports as ours, returns the answer to send back and
// that address. Anything else (other protocols, malformed frames,
// someone else's gratuitous ARP or DAD probe results, our own frames)
// yields a nil reply; asked is then the address that was asked for, if
// any, so the caller can count what it ignored.
func respond(mac net.HardwareAddr, frame []byte, announced func(netip.Addr) bool) (reply []byte, asked netip.Addr) {
	if len(frame) < ethHeaderLen || len(mac) != 6 {
		return nil, netip.Addr{}
	}
	if string(frame[6:12]) == string(mac) {
		return nil, netip.Addr{}
	}
	switch binary.BigEndian.Uint16(frame[12:14]) {
	case etherTypeARP:
		return respondARP(mac, frame, announced)
	case etherTypeIPv6:
		return respondNS(mac, frame, announced)
	}
	return nil, netip.Addr{}
}

func respondARP(mac net.HardwareAddr, frame []byte, announced func(netip.Addr) bool) ([]byte, netip.Addr) {
	a := frame[ethHeaderLen:]
	if len(a) < arpLen ||
		binary.BigEndian.Uint16(a[0:2]) != 1 || // Ethernet
		binary.BigEndian.Uint16(a[2:4]) != etherTypeIPv4 ||
		a[4] != 6 || a[5] != 4 ||
		binary.BigEndian.Uint16(a[6:8]) != arpRequest {
		return nil, netip.Addr{}
	}
	sha := net.HardwareAddr(a[8:14])
	spa := netip.AddrFrom4([4]byte(a[14:18]))
	tpa := netip.AddrFrom4([4]byte(a[24:28]))
	// sender == target is another host announcing the address itself
	// (gratuitous ARP): answering would fight its takeover.
	if spa == tpa || !announced(tpa) {
		return nil, tpa
	}
	return arpFrame(arpReply, frame[6:12], mac, tpa, sha, spa), tpa
}

// arpFrame builds an Ethernet frame carrying one ARP packet.
func arpFrame(op uint16, ethDst, sha net.HardwareAddr, spa netip.Addr, tha net.HardwareAddr, tpa netip.Addr) []byte {
	b := make([]byte, ethHeaderLen+arpLen)
	copy(b[0:6], ethDst)
	copy(b[6:12], sha)
	binary.BigEndian.PutUint16(b[12:14], etherTypeARP)
	a := b[ethHeaderLen:]
	binary.BigEndian.PutUint16(a[0:2], 1)
	binary.BigEndian.PutUint16(a[2:4], etherTypeIPv4)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:8], op)
	copy(a[8:14], sha)
	s, t := spa.As4(), tpa.As4()
	copy(a[14:18], s[:])
	copy(a[18:24], tha)
	copy(a[24:28], t[:])
	return b
}

// gratuitousARP returns the two broadcast frames that make neighbours
// move ip to mac: a request (RFC 5227 announcement, target MAC zero)
// and a reply whose target MAC equals the sender's, which is the form
// Linux treats as gratuitous for replies.
func gratuitousARP(mac net.HardwareAddr, ip netip.Addr) [][]byte {
	return [][]byte{
		arpFrame(arpRequest, broadcastMAC, mac, ip, zeroMAC, ip),
		arpFrame(arpReply, broadcastMAC, mac, ip, mac, ip),
	}
}

func respondNS(mac net.HardwareAddr, frame []byte, announced func(netip.Addr) bool) ([]byte, netip.Addr) {
	ip := frame[ethHeaderLen:]
	if len(ip) < ipv6HeaderLen+nsMinLen || ip[0]>>4 != 6 || ip[6] != protoICMPv6 || ip[7] != 255 {
		return nil, netip.Addr{}
	}
	plen := int(binary.BigEndian.Uint16(ip[4:6]))
	if plen < nsMinLen || ipv6HeaderLen+plen > len(ip) {
		return nil, netip.Addr{}
	}
	src := netip.AddrFrom16([16]byte(ip[8:24]))
	dst := netip.AddrFrom16([16]byte(ip[24:40]))
	icmp := ip[ipv6HeaderLen : ipv6HeaderLen+plen]
	if icmp[0] != icmpv6NeighborSolicitation || icmp[1] != 0 || icmpv6Checksum(src, dst, icmp) != 0 {
		return nil, netip.Addr{}
	}
	target := netip.AddrFrom16([16]byte(icmp[8:24]))
	if target.IsMulticast() {
		return nil, netip.Addr{}
	}
	// RFC 4861 7.1.1: a DAD probe (source ::) goes to the solicited-node
	// group and carries no source link-layer option.
	dad := src == unspecifiedV6
	lladdr := net.HardwareAddr(frame[6:12])
	for opts := icmp[nsMinLen:]; len(opts) > 0; {
		if len(opts) < 2 || opts[1] == 0 || len(opts) < int(opts[1])*8 {
			return nil, netip.Addr{}
		}
		if opts[0] == ndOptSourceLinkAddr {
			if dad {
				return nil, netip.Addr{}
			}
			if opts[1] == 1 {
				lladdr = net.HardwareAddr(opts[2:8])
			}
		}
		opts = opts[int(opts[1])*8:]
	}
	if !announced(target) {
		return nil, target
	}
	if dad {
		// Someone wants the address we hold: tell everyone it is taken,
		// unsolicited, as RFC 4861 7.2.4 says.
		return neighborAdvert(mac, target, allNodesMAC, allNodesIPv6, naFlagOverride), target
	}
	return neighborAdvert(mac, target, lladdr, src, naFlagSolicited|naFlagOverride), target
}

// neighborAdvert builds an Ethernet frame with a Neighbor Advertisement
// for target from mac. The IPv6 source is the target itself, as Linux
// does for addresses it owns; the hop limit is 255 so receivers accept it.
func neighborAdvert(mac net.HardwareAddr, target netip.Addr, ethDst net.HardwareAddr, dst netip.Addr, flags byte) []byte {
	b := make([]byte, ethHeaderLen+ipv6HeaderLen+naLen)
	copy(b[0:6], ethDst)
	copy(b[6:12], mac)
	binary.BigEndian.PutUint16(b[12:14], etherTypeIPv6)
	ip := b[ethHeaderLen:]
	ip[0] = 6 << 4
	binary.BigEndian.PutUint16(ip[4:6], naLen)
	ip[6] = protoICMPv6
	ip[7] = 255
	t, d := target.As16(), dst.As16()
	copy(ip[8:24], t[:])
	copy(ip[24:40], d[:])
	icmp := ip[ipv6HeaderLen:]
	icmp[0] = icmpv6NeighborAdvertisement
	icmp[4] = flags
	copy(icmp[8:24], t[:])
	icmp[24] = ndOptTargetLinkAddr
	icmp[25] = 1
	copy(icmp[26:32], mac)
	binary.BigEndian.PutUint16(icmp[2:4], icmpv6Checksum(target, dst, icmp))
	return b
}

// unsolicitedNA is the IPv6 takeover signal: an advertisement to all
// nodes with the override flag, which replaces a cached link address.
func unsolicitedNA(mac net.HardwareAddr, ip netip.Addr) [][]byte {
	return [][]byte{neighborAdvert(mac, ip, allNodesMAC, allNodesIPv6, naFlagOverride)}
}

// icmpv6Checksum is the Internet checksum over the IPv6 pseudo-header
// and msg. Over a message whose checksum field is filled in it is 0
// when the checksum is right.
func icmpv6Checksum(src, dst netip.Addr, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for len(b) >= 2 {
			sum += uint32(binary.BigEndian.Uint16(b))
			b = b[2:]
		}
		if len(b) == 1 {
			sum += uint32(b[0]) << 8
		}
	}
	s, d := src.As16(), dst.As16()
	add(s[:])
	add(d[:])
	sum += uint32(len(msg)) // upper-layer length; fits: NDP is < 64 KiB
	sum += protoICMPv6
	add(msg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// solicitedNode is the multicast group a Neighbor Solicitation for ip is
// sent to (RFC 4291 2.7.1).
func solicitedNode(ip netip.Addr) netip.Addr {
	g := solicitedNodeP
	a := ip.As16()
	copy(g[13:], a[13:])
	return netip.AddrFrom16(g)
}
