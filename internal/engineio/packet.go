// Package engineio implements the server side of Engine.IO v4: sessions,
// heartbeats, and the websocket and HTTP long-polling transports; and of
// Engine.IO 3, for Socket.IO v2 clients, when Options.AllowEIO3 is set.
package engineio

import (
	"bytes"
	"encoding/base64"
	"errors"

	"github.com/rallyhq/rally/internal/ws"
)

// Engine.IO packet types, as the digit that starts a text packet.
const (
	Open    byte = '0'
	Close   byte = '1'
	Ping    byte = '2'
	Pong    byte = '3'
	Message byte = '4'
	Upgrade byte = '5'
	Noop    byte = '6'
)

// separator joins packets in a polling payload.
const separator = '\x1e'

// errParse is the decoding error of a malformed engine packet.
var errParse = errors.New("engine.io: malformed packet")

// Frame is one encoded Engine.IO packet ready to be written. A text frame
// holds the whole packet text, type digit included ("4hello", "2"); a binary
// frame holds the raw bytes of a binary message.
type Frame = ws.Message

// TextFrame returns a text frame of packet type typ with the given data.
func TextFrame(typ byte, data string) Frame {
	b := make([]byte, 0, 1+len(data))
	b = append(b, typ)
	return Frame{Data: append(b, data...)}
}

var (
	pingFrame  = Frame{Data: []byte{Ping}}
	pongFrame  = Frame{Data: []byte{Pong}}
	noopFrame  = Frame{Data: []byte{Noop}}
	closeFrame = Frame{Data: []byte{Close}}
)

// AppendPayload appends frames to b as a polling payload: packets separated
// by 0x1e, binary messages as "b" and base64.
func AppendPayload(b []byte, frames []Frame) []byte {
	for i, f := range frames {
		if i > 0 {
			b = append(b, separator)
		}
		if f.Binary {
			b = append(b, 'b')
			b = base64.StdEncoding.AppendEncode(b, f.Data)
		} else {
			b = append(b, f.Data...)
		}
	}
	return b
}

// Packet is a decoded Engine.IO packet.
type Packet struct {
	Type   byte
	Data   []byte
	Binary bool // a binary message
}

// DecodePacket decodes one text packet: a type digit and data, or "b" and a
// base64 binary message.
func DecodePacket(s []byte) (Packet, error) {
	if len(s) == 0 {
		return Packet{}, errParse
	}
	if s[0] == 'b' {
		// Decode into a non-nil slice: "b" alone is an empty binary
		// message, which must stay distinct from no data at all
		// (AppendDecode(nil, ...) returns nil for it).
		dst := make([]byte, 0, base64.StdEncoding.DecodedLen(len(s)-1))
		data, err := base64.StdEncoding.AppendDecode(dst, s[1:])
		if err != nil {
			return Packet{}, errParse
		}
		return Packet{Type: Message, Data: data, Binary: true}, nil
	}
	if s[0] < Open || s[0] > Noop {
		return Packet{}, errParse
	}
	return Packet{Type: s[0], Data: s[1:]}, nil
}

// DecodePayload decodes a polling payload, calling fn for each packet in
// order. It stops at the first malformed packet and returns an error: the
// packets before it have been handled.
func DecodePayload(body []byte, fn func(Packet)) error {
	for len(body) > 0 || body != nil {
		seg := body
		i := bytes.IndexByte(body, separator)
		if i >= 0 {
			seg, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		p, err := DecodePacket(seg)
		if err != nil {
			return err
		}
		fn(p)
	}
	return nil
}
