package rally

import (
	"encoding/json"
	"errors"

	"github.com/rallyhq/rally/internal/parser"
)

// Raw is one event argument kept as it came: its JSON text, key order,
// numbers and escapes included, and the binary values its placeholders
// refer to, numbered from 0 over Attachments. A handler parameter of type
// Raw (or a final ...Raw) takes arguments undecoded, and emitting a Raw
// sends its JSON as it is (without insignificant spaces), binary values
// renumbered in the new packet: a relay is faithful.
//
//	hub.On("relay", func(s *rally.Socket, args ...rally.Raw) { s.Broadcast().Emit("relay", rally.Args(args)...) })
//
// Raw keeps its binary values only as an argument of its own: nested in
// another value it encodes its JSON, and refuses to if it has binary values.
type Raw struct {
	JSON        json.RawMessage
	Attachments [][]byte
}

// ReceiveRaw implements the decoding of an argument into a Raw.
func (r *Raw) ReceiveRaw(text json.RawMessage, attachments [][]byte) {
	r.JSON, r.Attachments = text, attachments
}

// SendRaw implements the encoding of a Raw argument.
func (r Raw) SendRaw() (json.RawMessage, [][]byte) { return r.JSON, r.Attachments }

// Decode decodes the argument into the value v points to, as a handler's
// parameter would be: binary values into []byte.
func (r Raw) Decode(v any) error { return parser.Unmarshal(r.JSON, r.Attachments, v) }

// MarshalJSON returns the JSON text, for a Raw nested in another value.
func (r Raw) MarshalJSON() ([]byte, error) {
	if len(r.Attachments) > 0 {
		return nil, errors.New("rally: a Raw holding binary values is only sent as an argument of its own")
	}
	if len(r.JSON) == 0 {
		return []byte("null"), nil
	}
	return r.JSON, nil
}

// Args converts raw arguments to the ...any of Emit.
func Args(raw []Raw) []any {
	out := make([]any, len(raw))
	for i, r := range raw {
		out[i] = r
	}
	return out
}
