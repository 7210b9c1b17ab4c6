package l2

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

var (
	ourMAC   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xaa}
	peerMAC  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xbb}
	lbIP4    = netip.MustParseAddr("192.0.2.100")
	peerIP4  = netip.MustParseAddr("192.0.2.1")
	lbIP6    = netip.MustParseAddr("2001:db8::100")
	peerIP6  = netip.MustParseAddr("2001:db8::1")
	otherIP4 = netip.MustParseAddr("192.0.2.200")
	otherIP6 = netip.MustParseAddr("2001:db8::200")
)

func onlyLB(ip netip.Addr) bool { return ip == lbIP4 || ip == lbIP6 }

// neighborSolicit builds an NS as a Linux host sends it: to the
// target's solicited-node group, with a source link-layer option unless
// it is a DAD probe. mutate may break it after the checksum is set.
func neighborSolicit(src, target netip.Addr, mutate func(ip []byte)) []byte {
	dad := !src.IsValid()
	if dad {
		src = netip.IPv6Unspecified()
	}
	icmpLen := nsMinLen
	if !dad {
		icmpLen += 8
	}
	b := make([]byte, ethHeaderLen+ipv6HeaderLen+icmpLen)
	g := solicitedNode(target).As16()
	copy(b[0:6], []byte{0x33, 0x33, g[12], g[13], g[14], g[15]})
	copy(b[6:12], peerMAC)
	binary.BigEndian.PutUint16(b[12:14], etherTypeIPv6)
	ip := b[ethHeaderLen:]
	ip[0] = 6 << 4
	binary.BigEndian.PutUint16(ip[4:6], uint16(icmpLen))
	ip[6], ip[7] = protoICMPv6, 255
	s, tg := src.As16(), target.As16()
	copy(ip[8:24], s[:])
	copy(ip[24:40], g[:])
	icmp := ip[ipv6HeaderLen:]
	icmp[0] = icmpv6NeighborSolicitation
	copy(icmp[8:24], tg[:])
	if !dad {
		icmp[24], icmp[25] = ndOptSourceLinkAddr, 1
		copy(icmp[26:32], peerMAC)
	}
	binary.BigEndian.PutUint16(icmp[2:4], icmpv6Checksum(src, netip.AddrFrom16(g), icmp))
	if mutate != nil {
		mutate(ip)
	}
	return b
}

func TestRespond(t *testing.T) {
	arpReq := arpFrame(arpRequest, broadcastMAC, peerMAC, peerIP4, zeroMAC, lbIP4)
	tests := []struct {
		name      string
		frame     []byte
		wantAsked netip.Addr
		want      []byte // nil: no answer
	}{{
		name:      "arp request for announced address",
		frame:     arpReq,
		wantAsked: lbIP4,
		want:      arpFrame(arpReply, peerMAC, ourMAC, lbIP4, peerMAC, peerIP4),
	}, {
		name:      "unicast arp request (cache refresh)",
		frame:     arpFrame(arpRequest, ourMAC, peerMAC, peerIP4, ourMAC, lbIP4),
		wantAsked: lbIP4,
		want:      arpFrame(arpReply, peerMAC, ourMAC, lbIP4, peerMAC, peerIP4),
	}, {
		name:      "arp probe from 0.0.0.0 is answered to its sender",
		frame:     arpFrame(arpRequest, broadcastMAC, peerMAC, netip.IPv4Unspecified(), zeroMAC, lbIP4),
		wantAsked: lbIP4,
		want:      arpFrame(arpReply, peerMAC, ourMAC, lbIP4, peerMAC, netip.IPv4Unspecified()),
	}, {
		name:      "arp request for another address",
		frame:     arpFrame(arpRequest, broadcastMAC, peerMAC, peerIP4, zeroMAC, otherIP4),
		wantAsked: otherIP4,
	}, {
		name:      "someone else's gratuitous arp for our address",
		frame:     gratuitousARP(peerMAC, lbIP4)[0],
		wantAsked: lbIP4,
	}, {
		name:  "arp reply",
		frame: arpFrame(arpReply, ourMAC, peerMAC, lbIP4, ourMAC, peerIP4),
	}, {
		name:  "our own frame",
		frame: arpFrame(arpRequest, broadcastMAC, ourMAC, peerIP4, zeroMAC, lbIP4),
	}, {
		name:  "truncated arp",
		frame: arpReq[:30],
	}, {
		name:      "neighbor solicitation for announced address",
		frame:     neighborSolicit(peerIP6, lbIP6, nil),
		wantAsked: lbIP6,
		want:      neighborAdvert(ourMAC, lbIP6, peerMAC, peerIP6, naFlagSolicited|naFlagOverride),
	}, {
		name:      "DAD probe for announced address gets an advert to all nodes",
		frame:     neighborSolicit(netip.Addr{}, lbIP6, nil),
		wantAsked: lbIP6,
		want:      neighborAdvert(ourMAC, lbIP6, allNodesMAC, allNodesIPv6, naFlagOverride),
	}, {
		name:      "neighbor solicitation for another address",
		frame:     neighborSolicit(peerIP6, otherIP6, nil),
		wantAsked: otherIP6,
	}, {
		name:  "routed solicitation (hop limit below 255)",
		frame: neighborSolicit(peerIP6, lbIP6, func(ip []byte) { ip[7] = 64 }),
	}, {
		name:  "bad checksum",
		frame: neighborSolicit(peerIP6, lbIP6, func(ip []byte) { ip[ipv6HeaderLen+2] ^= 0xff }),
	}, {
		name:  "payload length beyond frame",
		frame: neighborSolicit(peerIP6, lbIP6, func(ip []byte) { ip[5] += 8 }),
	}, {
		name:  "not a solicitation",
		frame: neighborAdvert(peerMAC, lbIP6, ourMAC, peerIP6, naFlagSolicited),
	}, {
		name:  "runt",
		frame: []byte{1, 2, 3},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, asked := respond(ourMAC, tt.frame, onlyLB)
			if asked != tt.wantAsked {
				t.Errorf("asked = %v, want %v", asked, tt.wantAsked)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("reply =\n%x\nwant\n%x", got, tt.want)
			}
		})
	}
}

func TestNeighborAdvertWire(t *testing.T) {
	f := neighborAdvert(ourMAC, lbIP6, peerMAC, peerIP6, naFlagSolicited|naFlagOverride)
	ip := f[ethHeaderLen:]
	icmp := ip[ipv6HeaderLen:]
	if got := icmpv6Checksum(lbIP6, peerIP6, icmp); got != 0 {
		t.Errorf("checksum does not verify: residue %#x", got)
	}
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"eth dst", net.HardwareAddr(f[0:6]).String(), peerMAC.String()},
		{"eth src", net.HardwareAddr(f[6:12]).String(), ourMAC.String()},
		{"hop limit", ip[7], byte(255)},
		{"ip src is target", netip.AddrFrom16([16]byte(ip[8:24])), lbIP6},
		{"ip dst", netip.AddrFrom16([16]byte(ip[24:40])), peerIP6},
		{"type", icmp[0], byte(icmpv6NeighborAdvertisement)},
		{"flags S|O", icmp[4], byte(0x60)},
		{"target", netip.AddrFrom16([16]byte(icmp[8:24])), lbIP6},
		{"option tlla", [2]byte{icmp[24], icmp[25]}, [2]byte{2, 1}},
		{"option mac", net.HardwareAddr(icmp[26:32]).String(), ourMAC.String()},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestGratuitousARPWire(t *testing.T) {
	frames := gratuitousARP(ourMAC, lbIP4)
	want := []struct {
		op       uint16
		tha      net.HardwareAddr
		ethDst   net.HardwareAddr
		spa, tpa netip.Addr
	}{
		{arpRequest, zeroMAC, broadcastMAC, lbIP4, lbIP4},
		{arpReply, ourMAC, broadcastMAC, lbIP4, lbIP4},
	}
	if len(frames) != len(want) {
		t.Fatalf("got %d frames, want %d", len(frames), len(want))
	}
	for i, w := range want {
		f := frames[i]
		a := f[ethHeaderLen:]
		if op := binary.BigEndian.Uint16(a[6:8]); op != w.op {
			t.Errorf("frame %d op = %d, want %d", i, op, w.op)
		}
		if !bytes.Equal(f[0:6], w.ethDst) || !bytes.Equal(a[8:14], ourMAC) || !bytes.Equal(a[18:24], w.tha) {
			t.Errorf("frame %d addresses wrong: %x", i, f)
		}
		if spa, tpa := netip.AddrFrom4([4]byte(a[14:18])), netip.AddrFrom4([4]byte(a[24:28])); spa != w.spa || tpa != w.tpa {
			t.Errorf("frame %d spa/tpa = %v/%v, want %v/%v", i, spa, tpa, w.spa, w.tpa)
		}
	}
}

func TestSolicitedNode(t *testing.T) {
	if got, want := solicitedNode(netip.MustParseAddr("2001:db8::12:3456:789a")), netip.MustParseAddr("ff02::1:ff56:789a"); got != want {
		t.Errorf("solicitedNode = %v, want %v", got, want)
	}
}
