package members

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

var testKey = []byte("0123456789abcdef-test-key")

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, hb := range []heartbeat{
		{Name: "node-a", Incarnation: 1, Seq: 1, Ready: true},
		{Name: "n", Incarnation: 1<<64 - 1, Seq: 1<<64 - 1},
		{Name: "node-b.example.com", Incarnation: 42, Seq: 7, Leaving: true},
		{Name: strings.Repeat("x", 255), Incarnation: 3, Seq: 9, Ready: true},
	} {
		for _, key := range [][]byte{nil, testKey} {
			b, err := encode(hb, key)
			if err != nil {
				t.Fatalf("encode %+v: %v", hb, err)
			}
			wantLen := headerLen + len(hb.Name)
			if key != nil {
				wantLen += macLen
			}
			if len(b) != wantLen {
				t.Errorf("%q key=%v: len %d, want %d", hb.Name[:1], key != nil, len(b), wantLen)
			}
			got, err := decode(b, key)
			if err != nil {
				t.Fatalf("decode %+v key=%v: %v", hb, key != nil, err)
			}
			if got != hb {
				t.Errorf("round trip: got %+v, want %+v", got, hb)
			}
		}
	}
}

func TestEncodeLeavingIsNeverReady(t *testing.T) {
	b, err := encode(heartbeat{Name: "a", Ready: true, Leaving: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decode(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Ready || !got.Leaving {
		t.Errorf("got ready=%v leaving=%v, want a leaving, unready heartbeat", got.Ready, got.Leaving)
	}
}

func TestEncodeRejectsBadNames(t *testing.T) {
	for _, name := range []string{"", strings.Repeat("x", 256)} {
		if _, err := encode(heartbeat{Name: name}, nil); err == nil {
			t.Errorf("encode name of %d bytes: no error", len(name))
		}
	}
}

func TestDecodeTruncatedAndExtended(t *testing.T) {
	for _, key := range [][]byte{nil, testKey} {
		b, err := encode(heartbeat{Name: "node-a", Incarnation: 5, Seq: 6, Ready: true}, key)
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(b) {
			if _, err := decode(b[:n], key); !errors.Is(err, errMalformed) {
				t.Errorf("key=%v, %d of %d bytes: err %v, want malformed", key != nil, n, len(b), err)
			}
		}
		if _, err := decode(append(bytes.Clone(b), 0), key); !errors.Is(err, errMalformed) {
			t.Errorf("key=%v, trailing byte: err %v, want malformed", key != nil, err)
		}
	}
}

func TestDecodeBadHeader(t *testing.T) {
	good, err := encode(heartbeat{Name: "node-a", Incarnation: 5, Seq: 6, Ready: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(b []byte){
		"magic":            func(b []byte) { b[0] = 'X' },
		"version 0":        func(b []byte) { b[4] = 0 },
		"version 2":        func(b []byte) { b[4] = 2 },
		"unknown flag":     func(b []byte) { b[5] |= 0x80 },
		"ready+leaving":    func(b []byte) { b[5] = flagReady | flagLeaving },
		"empty name":       func(b []byte) { b[22] = 0 },
		"name too long":    func(b []byte) { b[22]++ },
		"name too short":   func(b []byte) { b[22]-- },
		"MAC flag, no MAC": func(b []byte) { b[5] |= flagMAC },
	} {
		b := bytes.Clone(good)
		mutate(b)
		if _, err := decode(b, nil); !errors.Is(err, errMalformed) {
			t.Errorf("%s: err %v, want malformed", name, err)
		}
	}
}

func TestDecodeMAC(t *testing.T) {
	hb := heartbeat{Name: "node-a", Incarnation: 5, Seq: 6, Ready: true}
	signed, err := encode(hb, testKey)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := encode(hb, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decode(signed, []byte("another-key-of-16-bytes")); !errors.Is(err, errBadMAC) {
		t.Errorf("wrong key: err %v, want bad MAC", err)
	}
	if _, err := decode(plain, testKey); !errors.Is(err, errBadMAC) {
		t.Errorf("unsigned packet to a keyed member: err %v, want bad MAC", err)
	}
	// Every covered byte matters: flipping the ready flag or a sequence
	// bit must not pass, nor may a changed MAC.
	for _, i := range []int{5, 13, 21, len(signed) - 1} {
		b := bytes.Clone(signed)
		b[i] ^= 0x01
		if _, err := decode(b, testKey); err == nil {
			t.Errorf("byte %d flipped: accepted", i)
		}
	}
	// A member without a key trusts its network and skips the MAC.
	got, err := decode(signed, nil)
	if err != nil || got != hb {
		t.Errorf("signed packet without key: %+v, %v", got, err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, key := range [][]byte{nil, testKey} {
		for _, hb := range []heartbeat{
			{Name: "node-a", Incarnation: 1, Seq: 2, Ready: true},
			{Name: "b", Incarnation: 3, Seq: 4, Leaving: true},
		} {
			b, err := encode(hb, key)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte{})
	f.Add([]byte("PMHB"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, key := range [][]byte{nil, testKey} {
			hb, err := decode(b, key)
			if err != nil {
				continue
			}
			// Whatever decodes must encode back to the same bytes (a
			// keyless decode may have skipped a MAC it cannot recompute).
			if key == nil && b[5]&flagMAC != 0 {
				continue
			}
			again, err := encode(hb, key)
			if err != nil {
				t.Fatalf("decoded %+v does not encode: %v", hb, err)
			}
			if !bytes.Equal(again, b) {
				t.Fatalf("re-encoded %x, decoded from %x", again, b)
			}
		}
	})
}
