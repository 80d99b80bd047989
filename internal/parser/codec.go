package parser

import (
	"fmt"

	"github.com/rallyhq/rally/internal/engineio"
)

// Codec is a wire format of Socket.IO packets: how a packet becomes
// Engine.IO messages and how messages become packets again. Whatever the
// format, packets are held as this package models them: JSON data with
// placeholders, and attachments.
type Codec interface {
	// Encode returns the Engine.IO messages that carry p.
	Encode(p *Packet) ([]engineio.Frame, error)
	// Decode decodes one Engine.IO message of a connection. d is the
	// connection's decoding state, for formats that spread a packet over
	// several messages. It returns nil and no error while a packet waits
	// for more messages.
	Decode(d *Decoder, data []byte, binary bool) (*Packet, error)
}

// Text is socket.io-parser's format, the default: a text message per
// packet, then a binary message per attachment.
var Text Codec = textCodec{}

type textCodec struct{}

func (textCodec) Encode(p *Packet) ([]engineio.Frame, error) {
	text := p.AppendText([]byte{engineio.Message})
	frames := make([]engineio.Frame, 1, 1+len(p.Attachments))
	frames[0] = engineio.Frame{Data: text}
	for _, a := range p.Attachments {
		frames = append(frames, engineio.Frame{Data: a, Binary: true})
	}
	return frames, nil
}

func (textCodec) Decode(d *Decoder, data []byte, binary bool) (*Packet, error) {
	if binary {
		return d.DecodeBinary(data)
	}
	return d.DecodeText(data)
}

// Validate applies to a packet decoded by another format the rules the
// text decoder applies: the payload each type allows, usable event names,
// ack ids, name lengths, and placeholders that refer to attachments.
func Validate(p *Packet) error {
	if int(p.Type) >= len(typeNames) {
		return ErrUnknownType
	}
	if len(p.Namespace) > MaxNamespaceLen {
		return ErrInvalidNamespace
	}
	if p.ID != NoID && (p.ID < 0 || p.ID > MaxID) {
		return ErrInvalidID
	}
	if len(p.Data) > 0 && !validJSON(p.Data) {
		return ErrInvalidPayload
	}
	if err := checkPayload(p); err != nil {
		return err
	}
	binary := p.Type == BinaryEvent || p.Type == BinaryAck
	if binary != (len(p.Attachments) > 0) {
		return fmt.Errorf("%w: %s with %d attachments", ErrIllegalAttach, p.Type, len(p.Attachments))
	}
	if binary {
		return checkPlaceholders(p.Data, len(p.Attachments))
	}
	return nil
}
