//go:build linux

package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// field is one part of a concatenated key or value, as the kernel lays it
// out: every part of a concatenation takes a multiple of 4 bytes.
type field int

const (
	fieldAddr    field = iota // ipv4_addr: 4 bytes, network order
	fieldProto                // inet_proto: 1 byte, 3 zero
	fieldPort                 // inet_service: 2 bytes big-endian, 2 zero
	fieldSlot                 // numgen's result: a 4-byte integer in host order (a register)
	fieldVerdict              // a map value only: goto/jump <chain>, drop, accept, return
)

var protoNumbers = map[string]byte{"tcp": unix.IPPROTO_TCP, "udp": unix.IPPROTO_UDP, "sctp": unix.IPPROTO_SCTP}

var errBadElement = errors.New("malformed element")

// appendData appends s ("a . b . c") laid out as fields (no verdict).
func appendData(buf []byte, fields []field, s string) ([]byte, error) {
	at := len(buf)
	buf = append(buf, make([]byte, 4*len(fields))...)
	b := buf[at:]
	rest := s
	for i, f := range fields {
		p, r, more := strings.Cut(rest, " . ")
		if more != (i < len(fields)-1) {
			return nil, fmt.Errorf("%w: %q does not have %d parts", errBadElement, s, len(fields))
		}
		rest = r
		out := b[4*i : 4*i+4]
		switch f {
		case fieldAddr:
			a, err := netip.ParseAddr(p)
			if err != nil || !a.Is4() {
				return nil, fmt.Errorf("%w: %q is not an IPv4 address", errBadElement, p)
			}
			a4 := a.As4()
			copy(out, a4[:])
		case fieldProto:
			n, ok := protoNumbers[p]
			if !ok {
				v, err := strconv.ParseUint(p, 10, 8)
				if err != nil {
					return nil, fmt.Errorf("%w: %q is not a protocol", errBadElement, p)
				}
				n = byte(v)
			}
			out[0] = n
		case fieldPort:
			v, err := strconv.ParseUint(p, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("%w: %q is not a port", errBadElement, p)
			}
			binary.BigEndian.PutUint16(out, uint16(v))
		case fieldSlot:
			v, err := strconv.ParseUint(p, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%w: %q is not a slot", errBadElement, p)
			}
			binary.NativeEndian.PutUint32(out, uint32(v))
		default:
			return nil, fmt.Errorf("%w: field %d cannot be encoded as data", errBadElement, f)
		}
	}
	return buf, nil
}

// decodeData is appendData's inverse.
func decodeData(fields []field, b []byte) (string, error) {
	if len(b) != 4*len(fields) {
		return "", fmt.Errorf("%w: %d bytes, want %d", errBadElement, len(b), 4*len(fields))
	}
	parts := make([]string, len(fields))
	for i, f := range fields {
		in := b[4*i : 4*i+4]
		switch f {
		case fieldAddr:
			parts[i] = netip.AddrFrom4([4]byte(in)).String()
		case fieldProto:
			parts[i] = strconv.Itoa(int(in[0]))
			for name, n := range protoNumbers {
				if n == in[0] {
					parts[i] = name
				}
			}
		case fieldPort:
			parts[i] = strconv.Itoa(int(binary.BigEndian.Uint16(in)))
		case fieldSlot:
			parts[i] = strconv.FormatUint(uint64(binary.NativeEndian.Uint32(in)), 10)
		default:
			return "", fmt.Errorf("%w: field %d cannot be decoded as data", errBadElement, f)
		}
	}
	return strings.Join(parts, " . "), nil
}

var verdictNames = map[string]expr.VerdictKind{
	"drop": expr.VerdictDrop, "accept": expr.VerdictAccept, "return": expr.VerdictReturn,
	"goto": expr.VerdictGoto, "jump": expr.VerdictJump,
}

// encodeVerdict parses a verdict map value.
func encodeVerdict(s string) (*expr.Verdict, error) {
	word, chain, _ := strings.Cut(s, " ")
	kind, ok := verdictNames[word]
	withChain := kind == expr.VerdictGoto || kind == expr.VerdictJump
	if !ok || withChain != (chain != "") {
		return nil, fmt.Errorf("%w: %q is not a verdict", errBadElement, s)
	}
	return &expr.Verdict{Kind: kind, Chain: chain}, nil
}

// decodeVerdict reads the NFTA_DATA_VERDICT attributes of a verdict map
// element (google/nftables hands them over undecoded).
func decodeVerdict(b []byte) (string, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return "", fmt.Errorf("%w: verdict: %v", errBadElement, err)
	}
	ad.ByteOrder = binary.BigEndian
	var code int32
	var chain string
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_VERDICT_CODE:
			code = int32(ad.Uint32())
		case unix.NFTA_VERDICT_CHAIN:
			chain = ad.String()
		}
	}
	if err := ad.Err(); err != nil {
		return "", fmt.Errorf("%w: verdict: %v", errBadElement, err)
	}
	for name, k := range verdictNames {
		if int32(k) == code {
			if chain != "" {
				return name + " " + chain, nil
			}
			return name, nil
		}
	}
	return "", fmt.Errorf("%w: verdict code %d", errBadElement, code)
}
