package rally

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/rallyhq/rally/internal/callback"
	"github.com/rallyhq/rally/internal/parser"
)

var socketType = reflect.TypeFor[*Socket]()

// mustHandler checks an event handler at registration and panics with a
// clear message if it cannot be used.
func mustHandler(event string, handler any) *callback.Func {
	if event == "" {
		panic("rally: On: empty event name")
	}
	if parser.IsReserved(event) {
		panic(fmt.Sprintf("rally: On(%q): reserved event name; use OnConnect or OnDisconnect", event))
	}
	f, err := callback.NewSpec(fmt.Sprintf("rally: On(%q)", event), handler,
		callback.Spec{Fixed: []reflect.Type{socketType}, Ack: ackType})
	if err != nil {
		panic(err.Error())
	}
	return f
}

// eventPacket encodes an EVENT (or BINARY_EVENT) packet.
func eventPacket(nsp, event string, args []any, id int64) (*parser.Packet, error) {
	p, err := NewPacket(event, args...)
	if err != nil {
		return nil, err
	}
	typ := parser.Event
	if len(p.Attachments) > 0 {
		typ = parser.BinaryEvent
	}
	return &parser.Packet{Type: typ, Namespace: nsp, ID: id, Data: p.Data, Attachments: p.Attachments}, nil
}

// EventError is an error raised while handling an event: its arguments
// could not be decoded, its handler returned an error or panicked, or no
// handler exists. Err is the cause, with every detail: for an argument
// that does not decode, the Go type and the decoder's error (errors.As
// finds a *json.UnmarshalTypeError, say, or the error of an UnmarshalJSON
// method). Its text names the event and the argument's Go type, and
// quotes at most 256 bytes of the decoder's error, which may quote the
// input.
//
// When the client asked for an acknowledgement it receives the error as
// an ack ({"error": message}) with a message that shows nothing of the
// server: see AckError.
type EventError struct {
	Event string
	Err   error
}

func (e *EventError) Error() string { return fmt.Sprintf("rally: event %q: %v", e.Event, e.Err) }

func (e *EventError) Unwrap() error { return e.Err }

// AckError is an acknowledgement that carries an error: a single argument
// of the form {"error": "message"}. Handlers that fail answer with it, and
// EmitWithAck returns it when the other side answers so.
//
// The message a client gets for a failed event says what failed, not how
// the server failed:
//   - "invalid argument N" when argument N (counted from 1 after the event
//     name) does not decode into the handler's parameter: no Go type, no
//     decoder text, none of the input;
//   - "internal server error" when the handler panics or its results
//     cannot be encoded;
//   - the text of the error the handler returned, the handler's own
//     choice, cut to 256 bytes at a UTF-8 boundary, the last of them
//     saying "… (N bytes cut)", when it is longer.
type AckError struct {
	Message string `json:"error"`
}

func (e *AckError) Error() string { return e.Message }

// maxAckMessage bounds the message of the error ack answering an event
// whose handler returned an error.
const maxAckMessage = 256

// ackMessage returns the message of the error ack that answers an event
// that failed with err, as AckError describes.
func ackMessage(err error) string {
	var ee *EventError
	if errors.As(err, &ee) {
		err = ee.Err
	}
	var arg *callback.ArgError
	if errors.As(err, &arg) {
		return arg.PublicMessage()
	}
	if callback.IsPanic(err) || encodingFailed(err) {
		return "internal server error"
	}
	return callback.Clip(err.Error(), maxAckMessage)
}

// encodingFailed reports whether err comes from encoding/json failing to
// encode a value, as when a handler's results cannot be sent: its text
// names Go types.
func encodingFailed(err error) bool {
	var (
		typ *json.UnsupportedTypeError
		val *json.UnsupportedValueError
		mar *json.MarshalerError
	)
	return errors.As(err, &typ) || errors.As(err, &val) || errors.As(err, &mar)
}

// Reply holds the arguments of an acknowledgement.
type Reply struct {
	args        []json.RawMessage
	attachments [][]byte
}

// NewReply returns a Reply holding the given JSON arguments and the binary
// attachments their placeholders refer to. It is meant for clients and
// tests; servers get replies from EmitWithAck.
func NewReply(args []json.RawMessage, attachments [][]byte) Reply {
	return Reply{args: args, attachments: attachments}
}

// ReplyOf encodes Go values as a Reply, as if they had travelled in an
// acknowledgement: []byte values become binary attachments.
func ReplyOf(values ...any) (Reply, error) {
	data, atts, err := parser.MarshalAck(values)
	if err != nil {
		return Reply{}, fmt.Errorf("rally: encoding a reply: %w", err)
	}
	args, err := parser.SplitArray(data)
	if err != nil {
		return Reply{}, err
	}
	return Reply{args: args, attachments: atts}, nil
}

// Len returns the number of arguments.
func (r Reply) Len() int { return len(r.args) }

// Decode decodes the arguments, in order, into the values dst points to:
// JSON into Go values as encoding/json does, binary into []byte. Extra
// pointers are left untouched; extra arguments are ignored.
func (r Reply) Decode(dst ...any) error {
	for i, d := range dst {
		if i >= len(r.args) {
			break
		}
		if err := parser.Unmarshal(r.args[i], r.attachments, d); err != nil {
			return fmt.Errorf("rally: decoding ack argument %d: %w", i+1, err)
		}
	}
	return nil
}

// Values decodes every argument into a Go value: float64, string, bool,
// nil, []any, map[string]any, and []byte for binary.
func (r Reply) Values() []any {
	out := make([]any, len(r.args))
	for i := range r.args {
		parser.Unmarshal(r.args[i], r.attachments, &out[i])
	}
	return out
}

// Attachments returns the binary values the placeholders of the raw
// arguments refer to, in placeholder order.
func (r Reply) Attachments() [][]byte { return r.attachments }

// Raw returns the JSON text of argument i, with placeholders where binary
// values are.
func (r Reply) Raw(i int) json.RawMessage { return r.args[i] }

// Err returns an *AckError when the reply is the error form of an ack: a
// single object whose only key is "error", holding a string.
func (r Reply) Err() error {
	if len(r.args) != 1 || len(r.args[0]) == 0 || r.args[0][0] != '{' {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(r.args[0], &m) != nil || len(m) != 1 {
		return nil
	}
	var e AckError
	if json.Unmarshal(m["error"], &e.Message) != nil {
		return nil
	}
	return &e
}

// ErrNoHandler is the cause of the EventError returned when no handler is
// registered for a server-side event (OnServerEvent). An event from a
// client that no handler takes gets no answer, ack or not, as with the
// official server.
var ErrNoHandler = errors.New("no handler for this event")
