//go:build linux

package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// An element batch is laid out here byte by byte, straight into the one
// buffer that is sent, rather than through google/nftables: at 10,000
// services × 10 endpoints its per-element attribute lists and the send
// buffer grown message by message were a quarter of the first sync's CPU.
// The format is nfnetlink's: BATCH_BEGIN, NEWSETELEM / DELSETELEM
// messages (each: table, set, and a nested list of elements; a
// DELSETELEM without elements flushes the set), BATCH_END.

// batch is one encoded nfnetlink batch and what each of its acknowledged
// messages carries, to name the ops of a message the kernel refuses.
type batch struct {
	buf  []byte
	ops  []ElementOp
	msgs []batchMsg
	seq0 uint32 // the BATCH_BEGIN message's sequence number
}

// batchMsg is one element or flush message: the ops (first..last,
// inclusive) it holds. Message i of msgs has sequence number seq0+i+1.
type batchMsg struct {
	first, last int
}

const nlmsgHdrLen = unix.SizeofNlMsghdr

// encodeBatch lays out ops as one batch whose messages are numbered from
// seq. Consecutive ops of one kind on one container share a message,
// whose element list stays under maxListBytes (its length is 16 bits).
func encodeBatch(ops []ElementOp, seq uint32) (*batch, error) {
	b := &batch{buf: make([]byte, 0, batchSize(ops)), ops: ops, seq0: seq}
	b.endMsg(b.startMsg(unix.NFNL_MSG_BATCH_BEGIN, unix.NLM_F_REQUEST, unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES, seq))
	msg, list := -1, 0 // the open element message and its element list
	closeMsg := func() {
		if msg >= 0 {
			closeAttr(b.buf, list)
			b.endMsg(msg)
			msg = -1
		}
	}
	for i, op := range ops {
		c, ok := lookup(op.Container)
		if !ok || !c.viaNetlink() {
			return nil, fmt.Errorf("nftables: %q is not a netlink-managed set or map", op.Container)
		}
		if msg >= 0 && (op.Flush || op.Container != ops[i-1].Container || op.Delete != ops[i-1].Delete || len(b.buf)-list >= maxListBytes) {
			closeMsg()
		}
		if op.Flush {
			b.endMsg(b.setMsg(unix.NFT_MSG_DELSETELEM, unix.NLM_F_REQUEST|unix.NLM_F_ACK, op.Container, i))
			continue
		}
		if msg < 0 {
			typ := uint16(unix.NFT_MSG_NEWSETELEM)
			if op.Delete {
				typ = unix.NFT_MSG_DELSETELEM
			}
			msg = b.setMsg(typ, unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE, op.Container, i)
			list = len(b.buf)
			b.buf = appendAttrHeader(b.buf, unix.NFTA_SET_ELEM_LIST_ELEMENTS|unix.NLA_F_NESTED)
		}
		var err error
		if b.buf, err = appendElement(b.buf, c, op); err != nil {
			return nil, fmt.Errorf("nftables: %s: %w", op, err)
		}
		b.msgs[len(b.msgs)-1].last = i
	}
	closeMsg()
	b.endMsg(b.startMsg(unix.NFNL_MSG_BATCH_END, unix.NLM_F_REQUEST, unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES, seq+uint32(len(b.msgs))+1))
	return b, nil
}

// batchSize is a generous estimate of ops' encoded size.
func batchSize(ops []ElementOp) int {
	n := 2 * (nlmsgHdrLen + 4)
	for _, op := range ops {
		n += 64 + len(op.Key)/2 + len(op.Value)
	}
	return n
}

// setMsg starts an element message on container: nlmsghdr, nfgenmsg,
// table and set names; it records the message as carrying op first.
func (b *batch) setMsg(typ, flags uint16, container string, first int) int {
	seq := b.seq0 + uint32(len(b.msgs)) + 1
	b.msgs = append(b.msgs, batchMsg{first: first, last: first})
	at := b.startMsg(unix.NFNL_SUBSYS_NFTABLES<<8|typ, flags, unix.NFPROTO_IPV4, 0, seq)
	b.buf = appendStringAttr(b.buf, unix.NFTA_SET_ELEM_LIST_TABLE, TableName)
	b.buf = appendStringAttr(b.buf, unix.NFTA_SET_ELEM_LIST_SET, container)
	return at
}

// startMsg appends a netlink header (its length filled in by endMsg) and
// an nfgenmsg.
func (b *batch) startMsg(typ, flags uint16, family byte, resID uint16, seq uint32) int {
	at := len(b.buf)
	b.buf = binary.NativeEndian.AppendUint32(b.buf, 0)
	b.buf = binary.NativeEndian.AppendUint16(b.buf, typ)
	b.buf = binary.NativeEndian.AppendUint16(b.buf, flags)
	b.buf = binary.NativeEndian.AppendUint32(b.buf, seq)
	b.buf = binary.NativeEndian.AppendUint32(b.buf, 0) // port ID: the kernel's
	b.buf = append(b.buf, family, unix.NFNETLINK_V0)
	b.buf = binary.BigEndian.AppendUint16(b.buf, resID)
	return at
}

func (b *batch) endMsg(at int) {
	binary.NativeEndian.PutUint32(b.buf[at:], uint32(len(b.buf)-at))
}

// appendElement appends op's element (NFTA_LIST_ELEM): its key and, when
// c is a map and op adds, its value or verdict. A deletion carries the key
// only.
func appendElement(buf []byte, c container, op ElementOp) ([]byte, error) {
	elem := len(buf)
	buf = appendAttrHeader(buf, unix.NFTA_LIST_ELEM|unix.NLA_F_NESTED)
	key := len(buf)
	buf = appendAttrHeader(buf, unix.NFTA_SET_ELEM_KEY|unix.NLA_F_NESTED)
	var err error
	if buf, err = appendDataAttr(buf, c.key, op.Key); err != nil {
		return nil, err
	}
	closeAttr(buf, key)
	if !op.Delete && c.isMap {
		data := len(buf)
		buf = appendAttrHeader(buf, unix.NFTA_SET_ELEM_DATA|unix.NLA_F_NESTED)
		if len(c.value) == 1 && c.value[0] == fieldVerdict {
			v, err := encodeVerdict(op.Value)
			if err != nil {
				return nil, err
			}
			verdict := len(buf)
			buf = appendAttrHeader(buf, unix.NFTA_DATA_VERDICT|unix.NLA_F_NESTED)
			buf = binary.NativeEndian.AppendUint16(buf, 8)
			buf = binary.NativeEndian.AppendUint16(buf, unix.NFTA_VERDICT_CODE)
			buf = binary.BigEndian.AppendUint32(buf, uint32(v.Kind))
			if v.Chain != "" {
				buf = appendStringAttr(buf, unix.NFTA_VERDICT_CHAIN, v.Chain)
			}
			closeAttr(buf, verdict)
		} else if buf, err = appendDataAttr(buf, c.value, op.Value); err != nil {
			return nil, err
		}
		closeAttr(buf, data)
	}
	closeAttr(buf, elem)
	return buf, nil
}

// appendDataAttr appends an NFTA_DATA_VALUE holding s laid out as fields
// (always a multiple of 4 bytes: no padding).
func appendDataAttr(buf []byte, fields []field, s string) ([]byte, error) {
	at := len(buf)
	buf = appendAttrHeader(buf, unix.NFTA_DATA_VALUE)
	buf, err := appendData(buf, fields, s)
	if err != nil {
		return nil, err
	}
	closeAttr(buf, at)
	return buf, nil
}

// appendAttrHeader opens an attribute; closeAttr writes its length once
// its payload is appended.
func appendAttrHeader(buf []byte, typ uint16) []byte {
	buf = binary.NativeEndian.AppendUint16(buf, 0)
	return binary.NativeEndian.AppendUint16(buf, typ)
}

func closeAttr(buf []byte, at int) {
	binary.NativeEndian.PutUint16(buf[at:], uint16(len(buf)-at))
}

// appendStringAttr appends s NUL-terminated, padded to 4 bytes.
func appendStringAttr(buf []byte, typ uint16, s string) []byte {
	buf = binary.NativeEndian.AppendUint16(buf, uint16(4+len(s)+1))
	buf = binary.NativeEndian.AppendUint16(buf, typ)
	buf = append(buf, s...)
	buf = append(buf, 0)
	for len(buf)%4 != 0 {
		buf = append(buf, 0)
	}
	return buf
}

// describe names the ops of message m for an error.
func (b *batch) describe(m batchMsg) string {
	if m.first == m.last {
		return b.ops[m.first].String()
	}
	return fmt.Sprintf("%s and %d more", b.ops[m.first], m.last-m.first)
}

// send writes the batch with one sendmsg on a fresh NETLINK_NETFILTER
// socket of the calling thread's network namespace and checks that the
// kernel acknowledged every element and flush message. The kernel
// processes a batch inside that sendmsg, so every acknowledgement is
// queued when it returns: they are read without waiting.
func (b *batch) send() error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(fd)
	for _, o := range []struct{ level, opt, value int }{
		{unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sendBuffer},
		{unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, recvBuffer},
		// Errors echo only the failed message's header, not its 60 KB.
		{unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1},
	} {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.value); err != nil {
			return fmt.Errorf("netlink socket option %d: %w", o.opt, err)
		}
	}
	kernel := &unix.SockaddrNetlink{Family: unix.AF_NETLINK}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink bind: %w", err)
	}
	if err := unix.Sendto(fd, b.buf, 0, kernel); err != nil {
		return fmt.Errorf("netlink sendmsg of %d bytes: %w", len(b.buf), err)
	}
	acked := make([]bool, len(b.msgs))
	left := len(b.msgs)
	var errs []error
	rb := make([]byte, 64<<10)
	for left > 0 {
		n, _, err := unix.Recvfrom(fd, rb, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			return fmt.Errorf("netlink: reading acknowledgements: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(rb[:n])
		if err != nil {
			return fmt.Errorf("netlink: reading acknowledgements: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4 {
				continue
			}
			code := int32(binary.NativeEndian.Uint32(m.Data))
			i := int(m.Header.Seq - b.seq0 - 1)
			if i < 0 || i >= len(b.msgs) {
				// The batch itself was refused (BATCH_BEGIN / END).
				if code != 0 {
					errs = append(errs, fmt.Errorf("batch refused: %w", unix.Errno(-code)))
				}
				continue
			}
			if !acked[i] {
				acked[i] = true
				left--
			}
			if code != 0 {
				errs = append(errs, fmt.Errorf("%s: %w", b.describe(b.msgs[i]), unix.Errno(-code)))
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if left > 0 {
		return fmt.Errorf("netlink: the kernel acknowledged %d of %d messages", len(b.msgs)-left, len(b.msgs))
	}
	return nil
}
