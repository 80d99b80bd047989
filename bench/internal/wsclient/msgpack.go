package wsclient

import (
	"errors"
	"fmt"

	"github.com/tinylib/msgp/msgp"
)

// The socket.io-msgpack-parser format: each Socket.IO packet is one
// MessagePack map {type, data, nsp, id} in one binary websocket message;
// Engine.IO packets (open, ping, pong) stay text. The helpers below
// encode with github.com/tinylib/msgp and decode in place, without
// allocating.

// Socket.IO packet types.
const (
	PacketConnect      = 0
	PacketDisconnect   = 1
	PacketEvent        = 2
	PacketAck          = 3
	PacketConnectError = 4
)

var errPacket = errors.New("wsclient: not a msgpack Socket.IO packet")

// Packet is a decoded msgpack Socket.IO packet. Data holds the raw
// MessagePack of the data field (nil when absent), NSP the namespace;
// both point into the message read. ID is -1 when absent.
type Packet struct {
	Type int
	Data []byte
	NSP  []byte
	ID   int64
}

// DecodePacket decodes the map of one binary message.
func DecodePacket(m []byte) (Packet, error) {
	p := Packet{Type: -1, ID: -1}
	n, b, err := msgp.ReadMapHeaderBytes(m)
	if err != nil {
		return p, errPacket
	}
	for range n {
		var key []byte
		key, b, err = msgp.ReadMapKeyZC(b)
		if err != nil {
			return p, errPacket
		}
		switch string(key) {
		case "type":
			var t int64
			t, b, err = readInt(b)
			p.Type = int(t)
		case "id":
			if msgp.IsNil(b) {
				b, err = msgp.ReadNilBytes(b)
				break
			}
			p.ID, b, err = readInt(b)
		case "nsp":
			p.NSP, b, err = msgp.ReadStringZC(b)
		case "data":
			rest, serr := msgp.Skip(b)
			p.Data, b, err = b[:len(b)-len(rest)], rest, serr
		default:
			b, err = msgp.Skip(b)
		}
		if err != nil {
			return p, errPacket
		}
	}
	if p.Type < 0 {
		return p, errPacket
	}
	return p, nil
}

// readInt reads an integer of any MessagePack width, signed or not, or a
// float with an integer value (as JavaScript numbers may come).
func readInt(b []byte) (int64, []byte, error) {
	switch msgp.NextType(b) {
	case msgp.UintType:
		u, o, err := msgp.ReadUint64Bytes(b)
		return int64(u), o, err
	case msgp.Float64Type, msgp.Float32Type:
		f, o, err := msgp.ReadFloat64Bytes(b)
		return int64(f), o, err
	default:
		return msgp.ReadInt64Bytes(b)
	}
}

// AppendMsgpackEvent appends the msgpack EVENT packet
// {type: 2, data: [event, arg], nsp: "/", id} to b, with the id only when
// id >= 0. arg must be one MessagePack value.
func AppendMsgpackEvent(b []byte, id int64, event string, arg []byte) []byte {
	n := uint32(3)
	if id >= 0 {
		n++
	}
	b = msgp.AppendMapHeader(b, n)
	b = msgp.AppendString(b, "type")
	b = msgp.AppendInt64(b, PacketEvent)
	b = msgp.AppendString(b, "data")
	b = msgp.AppendArrayHeader(b, 2)
	b = msgp.AppendString(b, event)
	b = append(b, arg...)
	b = msgp.AppendString(b, "nsp")
	b = msgp.AppendString(b, "/")
	if id >= 0 {
		b = msgp.AppendString(b, "id")
		b = msgp.AppendInt64(b, id)
	}
	return b
}

// appendMsgpackConnect appends the msgpack CONNECT packet to the main
// namespace, {type: 0, nsp: "/"}.
func appendMsgpackConnect(b []byte) []byte {
	b = msgp.AppendMapHeader(b, 2)
	b = msgp.AppendString(b, "type")
	b = msgp.AppendInt64(b, PacketConnect)
	b = msgp.AppendString(b, "nsp")
	return msgp.AppendString(b, "/")
}

// MsgpackEventName returns the event name of an EVENT packet's data and
// the MessagePack of its arguments that follow it.
func MsgpackEventName(data []byte) (name, args []byte, err error) {
	n, b, err := msgp.ReadArrayHeaderBytes(data)
	if err != nil || n == 0 {
		return nil, nil, errPacket
	}
	name, b, err = msgp.ReadStringZC(b)
	if err != nil {
		return nil, nil, errPacket
	}
	return name, b, nil
}

// MsgpackIntField returns the integer value of key in the MessagePack map
// m starts with, without decoding its other values.
func MsgpackIntField(m []byte, key string) (int64, bool) {
	n, b, err := msgp.ReadMapHeaderBytes(m)
	if err != nil {
		return 0, false
	}
	for range n {
		var k []byte
		k, b, err = msgp.ReadMapKeyZC(b)
		if err != nil {
			return 0, false
		}
		if string(k) == key {
			v, _, err := readInt(b)
			return v, err == nil
		}
		if b, err = msgp.Skip(b); err != nil {
			return 0, false
		}
	}
	return 0, false
}

// joinMsgpack sends the msgpack CONNECT and waits for its reply, as Join.
func (c *Conn) joinMsgpack(before func(m []byte)) ([]byte, error) {
	c.wmu.Lock()
	c.pbuf = appendMsgpackConnect(c.pbuf[:0])
	c.wbuf = c.appendHeader(c.wbuf[:0], OpBinary, len(c.pbuf))
	start := len(c.wbuf)
	c.wbuf = append(c.wbuf, c.pbuf...)
	c.maskTail(start)
	_, err := c.nc.Write(c.wbuf)
	c.wmu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("wsclient: sending CONNECT: %w", err)
	}
	for {
		_, m, err := c.ReadMessage()
		if err != nil {
			return nil, fmt.Errorf("wsclient: waiting for CONNECT: %w", err)
		}
		if c.HandleEngine(m) {
			continue
		}
		p, err := DecodePacket(m)
		switch {
		case err != nil:
			return nil, err
		case p.Type == PacketConnect:
			return p.Data, nil
		case p.Type == PacketConnectError:
			return nil, fmt.Errorf("wsclient: CONNECT refused: %x", m)
		case before != nil:
			before(m)
		}
	}
}
