package members

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
)

// Wire format, version 1 (see doc.go for the table).
const (
	magic      = "PMHB"
	version    = 1
	headerLen  = 23 // magic, version, flags, incarnation, sequence, name length
	macLen     = sha256.Size
	maxNameLen = 255
	// maxPacketLen bounds the receive buffer; anything longer is not ours.
	maxPacketLen = headerLen + maxNameLen + macLen

	flagReady   = 0x01
	flagLeaving = 0x02
	flagMAC     = 0x04
	knownFlags  = flagReady | flagLeaving | flagMAC
)

var (
	errMalformed = errors.New("malformed heartbeat")
	errBadMAC    = errors.New("heartbeat without a valid MAC")
)

// heartbeat is one decoded packet.
type heartbeat struct {
	Name        string
	Incarnation uint64
	Seq         uint64
	Ready       bool
	Leaving     bool
}

// encode builds the packet for hb, with a MAC when key is set. Leaving
// wins over Ready so a goodbye can never be read as "ready".
func encode(hb heartbeat, key []byte) ([]byte, error) {
	if len(hb.Name) == 0 || len(hb.Name) > maxNameLen {
		return nil, errors.New("heartbeat name must be 1-255 bytes")
	}
	n := headerLen + len(hb.Name)
	b := make([]byte, n, n+macLen)
	copy(b, magic)
	b[4] = version
	var flags byte
	switch {
	case hb.Leaving:
		flags |= flagLeaving
	case hb.Ready:
		flags |= flagReady
	}
	if len(key) > 0 {
		flags |= flagMAC
	}
	b[5] = flags
	binary.BigEndian.PutUint64(b[6:], hb.Incarnation)
	binary.BigEndian.PutUint64(b[14:], hb.Seq)
	b[22] = byte(len(hb.Name))
	copy(b[headerLen:], hb.Name)
	if len(key) > 0 {
		b = appendMAC(b, key)
	}
	return b, nil
}

func appendMAC(b, key []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(b)
	return h.Sum(b)
}

// decode parses b. With a key, a packet must carry a valid MAC over
// everything before it or decode returns errBadMAC; without one a MAC is
// skipped unchecked (this node trusts its network anyway). Any other
// defect, including trailing bytes and unknown flags, is errMalformed:
// a new layout must come with a new version.
func decode(b, key []byte) (heartbeat, error) {
	if len(b) < headerLen || string(b[:4]) != magic || b[4] != version {
		return heartbeat{}, errMalformed
	}
	flags := b[5]
	if flags&^knownFlags != 0 || flags&(flagReady|flagLeaving) == flagReady|flagLeaving {
		return heartbeat{}, errMalformed
	}
	nameLen := int(b[22])
	body := headerLen + nameLen
	want := body
	if flags&flagMAC != 0 {
		want += macLen
	}
	if nameLen == 0 || len(b) != want {
		return heartbeat{}, errMalformed
	}
	if len(key) > 0 {
		if flags&flagMAC == 0 {
			return heartbeat{}, errBadMAC
		}
		h := hmac.New(sha256.New, key)
		h.Write(b[:body])
		if !hmac.Equal(h.Sum(nil), b[body:]) {
			return heartbeat{}, errBadMAC
		}
	}
	return heartbeat{
		Name:        string(b[headerLen:body]),
		Incarnation: binary.BigEndian.Uint64(b[6:]),
		Seq:         binary.BigEndian.Uint64(b[14:]),
		Ready:       flags&flagReady != 0,
		Leaving:     flags&flagLeaving != 0,
	}, nil
}
