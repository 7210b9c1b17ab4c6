//go:build linux

package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"

	gnft "github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// slot is how the kernel's numgen writes n: a host-order register.
func slot(n uint32) []byte { return binary.NativeEndian.AppendUint32(nil, n) }

func TestElementCodec(t *testing.T) {
	tests := []struct {
		container, key, value string
		wantKey, wantVal      []byte
		wantVerdict           *expr.Verdict
	}{{
		container: backendsMap("tcp"), key: "10.96.0.10 . tcp . 80 . 1", value: "10.244.1.2 . 8080",
		wantKey: slices.Concat([]byte{10, 96, 0, 10}, []byte{6, 0, 0, 0}, []byte{0, 80, 0, 0}, slot(1)),
		wantVal: []byte{10, 244, 1, 2, 0x1f, 0x90, 0, 0},
	}, {
		container: nodePortBackendsMap("sctp"), key: "sctp . 30082 . 9", value: "10.244.2.9 . 80",
		wantKey: slices.Concat([]byte{132, 0, 0, 0}, []byte{0x75, 0x82, 0, 0}, slot(9)),
		wantVal: []byte{10, 244, 2, 9, 0, 80, 0, 0},
	}, {
		container: mapDispatch, key: "10.96.0.53 . udp . 53", value: "goto pick-udp-3",
		wantKey:     []byte{10, 96, 0, 53, 17, 0, 0, 0, 0, 53, 0, 0},
		wantVerdict: &expr.Verdict{Kind: expr.VerdictGoto, Chain: "pick-udp-3"},
	}, {
		container: mapNodePortNoEndpoints, key: "tcp . 30081", value: "drop",
		wantKey:     []byte{6, 0, 0, 0, 0x75, 0x81, 0, 0},
		wantVerdict: &expr.Verdict{Kind: expr.VerdictDrop},
	}, {
		container: setHairpin, key: "10.244.1.5 . 10.244.1.5",
		wantKey: []byte{10, 244, 1, 5, 10, 244, 1, 5},
	}, {
		container: setNodeIPs, key: "192.168.1.10",
		wantKey: []byte{192, 168, 1, 10},
	}, {
		container: setServicePorts, key: "10.96.0.20 . 41 . 9090", // a protocol without a name
		wantKey: []byte{10, 96, 0, 20, 41, 0, 0, 0, 0x23, 0x82, 0, 0},
	}}
	for _, tt := range tests {
		t.Run(tt.container+" "+tt.key, func(t *testing.T) {
			c := byName(tt.container)
			key, val, verdict, err := encodeOne(c, ElementOp{Container: tt.container, Key: tt.key, Value: tt.value})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(key, tt.wantKey) || !slices.Equal(val, tt.wantVal) {
				t.Errorf("encoded key %v value %v, want %v %v", key, val, tt.wantKey, tt.wantVal)
			}
			var wantVerdict []byte
			if tt.wantVerdict != nil {
				attrs := []netlink.Attribute{{Type: unix.NFTA_VERDICT_CODE, Data: binary.BigEndian.AppendUint32(nil, uint32(tt.wantVerdict.Kind))}}
				if tt.wantVerdict.Chain != "" {
					attrs = append(attrs, netlink.Attribute{Type: unix.NFTA_VERDICT_CHAIN, Data: []byte(tt.wantVerdict.Chain + "\x00")})
				}
				if wantVerdict, err = netlink.MarshalAttributes(attrs); err != nil {
					t.Fatal(err)
				}
			}
			if !slices.Equal(verdict, wantVerdict) {
				t.Errorf("verdict attributes %v, want %v", verdict, wantVerdict)
			}
			// Back: google/nftables hands a verdict over as its
			// NFTA_DATA_VERDICT attributes, in Val.
			e := gnft.SetElement{Key: key, Val: val}
			if verdict != nil {
				e.Val = verdict
			}
			gotKey, gotValue, err := decodeElement(c, e)
			if err != nil {
				t.Fatal(err)
			}
			if gotKey != tt.key || gotValue != tt.value {
				t.Errorf("decoded %q : %q, want %q : %q", gotKey, gotValue, tt.key, tt.value)
			}
		})
	}
	// Deletions carry the key only.
	_, val, verdict, err := encodeOne(byName(mapDispatch), ElementOp{Delete: true, Container: mapDispatch, Key: "10.96.0.53 . udp . 53", Value: "goto pick-udp-3"})
	if err != nil || val != nil || verdict != nil {
		t.Errorf("deletion encoded with value %v verdict %v (%v); want the key only", val, verdict, err)
	}
}

// encodeOne encodes op's element with appendElement and takes it apart
// again: the key's bytes, the value's, and a verdict's attributes.
func encodeOne(c container, op ElementOp) (key, val, verdict []byte, err error) {
	buf, err := appendElement(nil, c, op)
	if err != nil {
		return nil, nil, nil, err
	}
	nested := func(b []byte, want uint16) ([]byte, error) {
		ad, err := netlink.NewAttributeDecoder(b)
		if err != nil {
			return nil, err
		}
		var out []byte
		for ad.Next() {
			if ad.Type() == want {
				out = ad.Bytes()
			}
		}
		return out, ad.Err()
	}
	elem, err := nested(buf, unix.NFTA_LIST_ELEM)
	if err != nil || elem == nil {
		return nil, nil, nil, fmt.Errorf("no list element in %v: %v", buf, err)
	}
	k, _ := nested(elem, unix.NFTA_SET_ELEM_KEY)
	if key, err = nested(k, unix.NFTA_DATA_VALUE); err != nil {
		return nil, nil, nil, err
	}
	if d, _ := nested(elem, unix.NFTA_SET_ELEM_DATA); d != nil {
		val, _ = nested(d, unix.NFTA_DATA_VALUE)
		verdict, _ = nested(d, unix.NFTA_DATA_VERDICT)
	}
	return key, val, verdict, nil
}

func TestElementCodecRejects(t *testing.T) {
	for _, tt := range []struct{ container, key, value string }{
		{backendsMap("tcp"), "10.96.0.10 . tcp . 80", "10.244.1.2 . 8080"},        // a part short
		{backendsMap("tcp"), "10.96.0.10 . tcp . 80 . x", "10.244.1.2 . 8080"},    // slot
		{backendsMap("tcp"), "10.96.0.10 . tcp . 70000 . 1", "10.244.1.2 . 8080"}, // port
		{backendsMap("tcp"), "fd00::1 . tcp . 80 . 1", "10.244.1.2 . 8080"},       // IPv6 in an ip table
		{mapDispatch, "10.96.0.10 . bogus . 80", "goto pick-tcp-1"},
		{mapDispatch, "10.96.0.10 . tcp . 80", "goto"},
		{mapDispatch, "10.96.0.10 . tcp . 80", "drop pick-tcp-1"},
		{mapDispatch, "10.96.0.10 . tcp . 80", "dnat"},
	} {
		_, err := appendElement(nil, byName(tt.container), ElementOp{Container: tt.container, Key: tt.key, Value: tt.value})
		if !errors.Is(err, errBadElement) {
			t.Errorf("%s { %s : %s }: %v, want errBadElement", tt.container, tt.key, tt.value, err)
		}
	}
	if _, err := decodeData(byName(backendsMap("tcp")).key, make([]byte, 12)); !errors.Is(err, errBadElement) {
		t.Errorf("decoding 12 bytes as a 16-byte key: %v, want errBadElement", err)
	}
}
