//go:build linux

package nftables

import (
	"fmt"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestEncodeBatchMessages: ops become BATCH_BEGIN, one message per run of
// ops of one kind on one container (split when the element list reaches
// maxListBytes; a flush is its own message), BATCH_END, numbered in order.
func TestEncodeBatchMessages(t *testing.T) {
	var ops []ElementOp
	for i := range 2000 {
		ops = append(ops, ElementOp{Container: backendsMap("tcp"), Key: fmt.Sprintf("10.96.%d.%d . tcp . 80 . 0", i/250, i%250), Value: "10.244.0.1 . 8080"})
	}
	ops = append(ops,
		ElementOp{Delete: true, Container: backendsMap("tcp"), Key: "10.96.99.1 . tcp . 80 . 0"},
		ElementOp{Flush: true, Container: setHairpin},
		ElementOp{Container: mapDispatch, Key: "10.96.0.1 . tcp . 80", Value: "goto pick-tcp-1"},
		ElementOp{Container: mapDispatch, Key: "10.96.0.2 . tcp . 80", Value: "drop"},
	)
	b, err := encodeBatch(ops, 1000)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := syscall.ParseNetlinkMessage(b.buf)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		typ         uint16
		first, last int
	}
	nft := func(m uint16) uint16 { return unix.NFNL_SUBSYS_NFTABLES<<8 | m }
	var wants []want
	// 2,000 backends elements of 44 bytes each: 88,000 bytes, two
	// messages whose lists just reach maxListBytes.
	one, err := appendElement(nil, byName(backendsMap("tcp")), ops[0])
	if err != nil || len(one) != 44 {
		t.Fatalf("one backends element is %d bytes (%v), want 44", len(one), err)
	}
	perMsg := (maxListBytes - 4 + len(one) - 1) / len(one)
	for first := 0; first < 2000; first += perMsg {
		wants = append(wants, want{nft(unix.NFT_MSG_NEWSETELEM), first, min(first+perMsg, 2000) - 1})
	}
	wants = append(wants, want{nft(unix.NFT_MSG_DELSETELEM), 2000, 2000}, want{nft(unix.NFT_MSG_DELSETELEM), 2001, 2001},
		want{nft(unix.NFT_MSG_NEWSETELEM), 2002, 2003})
	if len(msgs) != len(wants)+2 || len(b.msgs) != len(wants) {
		t.Fatalf("%d netlink messages, %d recorded; want %d + begin and end", len(msgs), len(b.msgs), len(wants))
	}
	if msgs[0].Header.Type != unix.NFNL_MSG_BATCH_BEGIN || msgs[len(msgs)-1].Header.Type != unix.NFNL_MSG_BATCH_END {
		t.Errorf("batch framed by types %d … %d", msgs[0].Header.Type, msgs[len(msgs)-1].Header.Type)
	}
	for i, m := range msgs {
		if m.Header.Seq != uint32(1000+i) {
			t.Errorf("message %d has sequence %d, want %d", i, m.Header.Seq, 1000+i)
		}
	}
	for i, w := range wants {
		m, rec := msgs[i+1], b.msgs[i]
		if m.Header.Type != w.typ || rec.first != w.first || rec.last != w.last || m.Header.Seq != b.seq0+uint32(i)+1 {
			t.Errorf("message %d: type %#x ops %d..%d seq %d, want type %#x ops %d..%d seq %d", i, m.Header.Type, rec.first, rec.last, m.Header.Seq, w.typ, w.first, w.last, b.seq0+uint32(i)+1)
		}
		if m.Header.Flags&unix.NLM_F_ACK == 0 {
			t.Errorf("message %d asks no acknowledgement", i)
		}
		if len(m.Data) > 4+maxListBytes+200 {
			t.Errorf("message %d is %d bytes: its element list's 16-bit length would overflow", i, len(m.Data))
		}
	}
	if d := b.describe(b.msgs[len(b.msgs)-1]); d != "add element ip portal-proxy dispatch { 10.96.0.1 . tcp . 80 : goto pick-tcp-1 } and 1 more" {
		t.Errorf("describe: %q", d)
	}
}
