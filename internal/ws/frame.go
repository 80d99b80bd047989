// Package ws is the server side of the WebSocket protocol (RFC 6455) as
// rally needs it: the opening handshake on a hijacked HTTP connection,
// messages read by a push parser from whatever bytes arrive, and writes that
// put many messages in one system call.
//
// A connection waiting for its client holds no goroutine and no buffer on
// Linux: it is watched by one epoll instance for the whole process, and a
// read borrows a pooled buffer only while bytes are there (see poll_linux.go).
package ws

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// Close status codes (RFC 6455 §7.4.1) used by this package.
const (
	StatusNormalClosure = 1000
	StatusGoingAway     = 1001
	StatusProtocolError = 1002
	StatusNoStatus      = 1005
	StatusInvalidData   = 1007
	StatusMessageTooBig = 1009
)

const (
	finBit  = 0x80
	rsv1Bit = 0x40
	maskBit = 0x80

	maxHeaderLen  = 14  // 2 + 8 bytes of length + 4 bytes of mask
	maxControlLen = 125 // payload bytes of a control frame
)

// ProtocolError is a violation of the protocol by the peer. The connection
// is failed with Code.
type ProtocolError struct {
	Code int
	Msg  string
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("websocket: %s (close %d)", e.Msg, e.Code)
}

// CloseError reports a close frame received from the peer.
type CloseError struct {
	Code   int // StatusNoStatus when the frame carried none
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("websocket: closed by peer with %d %q", e.Code, e.Reason)
}

// ErrClosed is returned by writes on a connection that was closed.
var ErrClosed = errors.New("websocket: connection closed")

func protocolError(code int, format string, args ...any) *ProtocolError {
	return &ProtocolError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// appendHeader appends the header of an unmasked server frame.
func appendHeader(b []byte, first byte, n int) []byte {
	switch {
	case n <= 125:
		return append(b, first, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, first, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, first, 127), uint64(n))
	}
}

// mask XORs b with key, starting at offset pos of the key, and returns the
// offset for the next byte.
func mask(key [4]byte, pos int, b []byte) int {
	if len(b) >= 16 {
		// Rotate the key so that it starts at pos, then work on 8 bytes
		// at a time.
		var k [8]byte
		for i := range k {
			k[i] = key[(pos+i)&3]
		}
		k64 := binary.LittleEndian.Uint64(k[:])
		for len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k64)
			b = b[8:]
		}
	}
	for i := range b {
		b[i] ^= key[pos&3]
		pos++
	}
	return pos & 3
}
