//go:build linux

package nftables

import (
	"context"
	"fmt"
	"time"

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

// netlinkElements is the real Elements over NETLINK_NETFILTER, one fresh
// socket per call: batches are encoded here (batch.go), listings read
// with google/nftables.
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

// Apply implements Elements: one nfnetlink batch (encodeBatch), sent with
// one sendmsg, so the kernel applies all of ops or none.
func (n *netlinkElements) Apply(ctx context.Context, ops []ElementOp) error {
	if len(ops) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := encodeBatch(ops, uint32(time.Now().UnixNano()))
	if err != nil {
		return err
	}
	if err := b.send(); err != nil {
		return fmt.Errorf("nftables: element batch (%d ops): %w", len(ops), err)
	}
	return nil
}

// decodeElement reads an element listed by google/nftables (a verdict's
// NFTA_DATA_VERDICT attributes are in Val, undecoded).
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
