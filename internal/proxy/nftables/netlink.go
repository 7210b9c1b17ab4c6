//go:build linux

package nftables

import (
	"context"
	"fmt"

	gnft "github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// sendBuffer is the socket send buffer a batch needs: the 185,000
// elements of 10,000 services × 10 endpoints are ~11 MB of netlink
// messages, sent with one sendmsg (the batch must
// reach the kernel whole to be atomic). recvBuffer holds the kernel's
// acks, one per message, which arrive before we read them. The FORCE
// options need CAP_NET_ADMIN, which writing nftables needs anyway.
const (
	sendBuffer = 64 << 20
	recvBuffer = 8 << 20
)

// maxListBytes bounds the encoded elements of one NEWSETELEM/DELSETELEM
// message (give or take one element): the element list is one netlink
// attribute, whose length is 16 bits.
const maxListBytes = 60 << 10

// encodedSize is a generous estimate of e's size in an element list.
func encodedSize(e gnft.SetElement) int {
	n := 24 + len(e.Key) + len(e.Val)
	if e.VerdictData != nil {
		n += 32 + len(e.VerdictData.Chain)
	}
	return n
}

// netlinkElements is the real Elements: google/nftables over
// NETLINK_NETFILTER, one fresh socket per call.
type netlinkElements struct {
	table *gnft.Table
}

// NewNetlinkElements returns the Elements of the table TableName, talking
// netlink to the kernel of the calling thread's network namespace.
func NewNetlinkElements() Elements {
	return &netlinkElements{table: &gnft.Table{Name: TableName, Family: gnft.TableFamilyIPv4}}
}

func (n *netlinkElements) conn() (*gnft.Conn, error) {
	return gnft.New(gnft.WithSockOptions(func(c *netlink.Conn) error {
		rc, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sendBuffer)
			if serr == nil {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, recvBuffer)
			}
		}); err != nil {
			return err
		}
		return serr
	}))
}

func (n *netlinkElements) set(name string) *gnft.Set {
	return &gnft.Set{Table: n.table, Name: name, IsMap: byName(name).isMap}
}

// List implements Elements.
func (n *netlinkElements) List(ctx context.Context, container string) (map[string]string, error) {
	c, ok := lookup(container)
	if !ok || !c.viaNetlink() {
		return nil, fmt.Errorf("nftables: %q is not a netlink-managed set or map", container)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	conn, err := n.conn()
	if err != nil {
		return nil, fmt.Errorf("nftables: netlink: %w", err)
	}
	raw, err := conn.GetSetElements(n.set(container))
	if err != nil {
		return nil, fmt.Errorf("nftables: list elements of %s: %w", container, err)
	}
	out := make(map[string]string, len(raw))
	for _, e := range raw {
		k, v, err := decodeElement(c, e)
		if err != nil {
			return nil, fmt.Errorf("nftables: element of %s: %w", container, err)
		}
		out[k] = v
	}
	return out, nil
}

// Apply implements Elements: one batch, so the kernel applies all of ops
// or none. Consecutive ops of one kind on one container share messages.
func (n *netlinkElements) Apply(ctx context.Context, ops []ElementOp) error {
	if len(ops) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	conn, err := n.conn()
	if err != nil {
		return fmt.Errorf("nftables: netlink: %w", err)
	}
	// run collects consecutive elements for one message.
	var run []gnft.SetElement
	size := 0
	queue := func(op ElementOp) error {
		if len(run) == 0 {
			return nil
		}
		s := n.set(op.Container)
		var err error
		if op.Delete {
			err = conn.SetDeleteElements(s, run)
		} else {
			err = conn.SetAddElements(s, run)
		}
		run, size = run[:0], 0
		return err
	}
	for i, op := range ops {
		c, ok := lookup(op.Container)
		if !ok || !c.viaNetlink() {
			return fmt.Errorf("nftables: %q is not a netlink-managed set or map", op.Container)
		}
		if op.Flush {
			conn.FlushSet(n.set(op.Container))
			continue
		}
		e, err := encodeElement(c, op)
		if err != nil {
			return fmt.Errorf("nftables: %s: %w", op, err)
		}
		run, size = append(run, e), size+encodedSize(e)
		last := i == len(ops)-1
		if last || size >= maxListBytes || ops[i+1].Container != op.Container || ops[i+1].Delete != op.Delete || ops[i+1].Flush {
			if err := queue(op); err != nil {
				return fmt.Errorf("nftables: %s: %w", op, err)
			}
		}
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("nftables: element batch (%d ops): %w", len(ops), err)
	}
	return nil
}

// encodeElement turns op into google/nftables' form. A deletion carries
// the key only.
func encodeElement(c container, op ElementOp) (gnft.SetElement, error) {
	var e gnft.SetElement
	var err error
	if e.Key, err = encodeData(c.key, op.Key); err != nil {
		return e, err
	}
	if op.Delete || !c.isMap {
		return e, nil
	}
	if len(c.value) == 1 && c.value[0] == fieldVerdict {
		e.VerdictData, err = encodeVerdict(op.Value)
	} else {
		e.Val, err = encodeData(c.value, op.Value)
	}
	return e, err
}

// decodeElement is encodeElement's inverse for an element read back.
func decodeElement(c container, e gnft.SetElement) (key, value string, err error) {
	if key, err = decodeData(c.key, e.Key); err != nil || !c.isMap {
		return key, "", err
	}
	if len(c.value) == 1 && c.value[0] == fieldVerdict {
		value, err = decodeVerdict(e.Val)
	} else {
		value, err = decodeData(c.value, e.Val)
	}
	return key, value, err
}
