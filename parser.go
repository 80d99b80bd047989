package rally

import (
	"fmt"

	"github.com/rallyhq/rally/internal/engineio"
	"github.com/rallyhq/rally/internal/parser"
)

// Parser is a wire format of Socket.IO packets, chosen per hub with
// Options.Parser and per Go client with client.Options.Parser, as Node
// chooses one with its parser option. nil is socket.io-parser's format,
// the official default; msgpackparser.Parser is socket.io-msgpack-parser's.
// A hub's clients must all use its parser. Adapters carry packets between
// servers in their own format, so servers with different parsers can share
// rooms and broadcasts.
//
// The implementations are rally's own: the method's result is internal.
type Parser interface {
	// Codec returns the implementation of the format.
	Codec() parser.Codec
}

// codecOf returns the codec of p, the default one for nil.
func codecOf(p Parser) parser.Codec {
	if p == nil {
		return parser.Text
	}
	if c := p.Codec(); c != nil {
		return c
	}
	return parser.Text
}

// encodeFrames encodes a packet as the Engine.IO messages of the hub's
// parser. A packet that does not encode is reported and sends nothing.
func (h *Hub) encodeFrames(p *parser.Packet) []engineio.Frame {
	frames, err := h.codec.Encode(p)
	if err != nil {
		h.reportError(nil, fmt.Errorf("rally: encoding a %s packet: %w", p.Type, err))
		return nil
	}
	return frames
}
