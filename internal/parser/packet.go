// Package parser encodes and decodes Socket.IO v5 packets: the text form that
// travels inside an Engine.IO message, binary attachments, and the mapping of
// JSON arguments to and from Go values.
package parser

import (
	"encoding/json"
	"strconv"
)

// Type is a Socket.IO packet type.
type Type uint8

// The Socket.IO v5 packet types.
const (
	Connect      Type = 0
	Disconnect   Type = 1
	Event        Type = 2
	Ack          Type = 3
	ConnectError Type = 4
	BinaryEvent  Type = 5
	BinaryAck    Type = 6
)

var typeNames = [...]string{"CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// NoID marks a packet without an ack id.
const NoID int64 = -1

// MaxID is the largest ack id accepted: the largest integer a JavaScript
// number holds exactly.
const MaxID int64 = 1<<53 - 1

// MaxAttachments is the most binary attachments one packet may carry; the
// official parsers refuse more.
const MaxAttachments = 10

// Limits on names, far above what applications use: longer ones are
// refused as invalid packets.
const (
	MaxNamespaceLen = 256  // bytes, the leading "/" included
	MaxEventLen     = 1024 // bytes
)

// Packet is one Socket.IO packet.
type Packet struct {
	Type Type
	// Namespace is the namespace name, "/" for the main namespace.
	Namespace string
	// ID is the ack id, or NoID.
	ID int64
	// Data is the JSON payload as it travels, with binary values replaced by
	// placeholders; nil when the packet has none.
	Data json.RawMessage
	// Attachments holds the binary values the placeholders in Data refer to.
	Attachments [][]byte
}

// AppendText appends the text form of p (without the Engine.IO message
// prefix) to b. For BINARY_EVENT and BINARY_ACK the attachment count is taken
// from len(p.Attachments); the attachments themselves travel separately.
func (p *Packet) AppendText(b []byte) []byte {
	b = append(b, '0'+byte(p.Type))
	if p.Type == BinaryEvent || p.Type == BinaryAck {
		b = strconv.AppendInt(b, int64(len(p.Attachments)), 10)
		b = append(b, '-')
	}
	if p.Namespace != "" && p.Namespace != "/" {
		b = append(b, p.Namespace...)
		b = append(b, ',')
	}
	if p.ID >= 0 {
		b = strconv.AppendInt(b, p.ID, 10)
	}
	return append(b, p.Data...)
}

// String returns the text form of p, for logs and tests.
func (p *Packet) String() string {
	return string(p.AppendText(nil))
}

// Size returns the bytes of the packet's data and attachments: what it
// holds in memory, near enough.
func (p *Packet) Size() int64 {
	n := int64(len(p.Data))
	for _, a := range p.Attachments {
		n += int64(len(a))
	}
	return n
}
