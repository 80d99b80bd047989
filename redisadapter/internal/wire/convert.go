// Package wire holds what the Redis adapters share about Node's data: the
// conversions between rally's packets, replies and handshakes and the
// values that Node's adapters carry (MessagePack or JSON), the accessors of
// decoded messages, ids, and the errors of requests.
package wire

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/redisadapter/internal/msgpack"
)

// IDAlphabet is the alphabet of NewID.
const IDAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// NewID returns 6 random characters from A-Z a-z 0-9 - _, the form of the
// Node adapter's uids and request ids.
func NewID() string {
	var b [6]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = IDAlphabet[b[i]&63]
	}
	return string(b[:])
}

// PacketData converts the payload of a Packet, the JSON array
// [event, args...] with placeholders, into the MessagePack data array with
// the binary values in place.
func PacketData(p rally.Packet) ([]any, error) {
	atts := p.Attachments
	if atts == nil {
		atts = [][]byte{}
	}
	v, err := msgpack.FromJSON(p.Data, atts)
	if err != nil {
		return nil, fmt.Errorf("redisadapter: converting an event: %w", err)
	}
	data, ok := v.([]any)
	if !ok || len(data) == 0 {
		return nil, errors.New("redisadapter: an event must be a non-empty array")
	}
	if _, ok := data[0].(string); !ok {
		return nil, errors.New("redisadapter: an event's name must be a string")
	}
	return data, nil
}

// DataPacket converts a MessagePack data array [event, args...] into a
// Packet.
func DataPacket(v any) (rally.Packet, error) {
	data, ok := v.([]any)
	if !ok || len(data) == 0 {
		return rally.Packet{}, fmt.Errorf("event data is %T, want a non-empty array", v)
	}
	if _, ok := data[0].(string); !ok {
		return rally.Packet{}, fmt.Errorf("event name is %T, want a string", data[0])
	}
	text, atts, err := msgpack.ToJSON(data)
	if err != nil {
		return rally.Packet{}, err
	}
	return rally.Packet{Data: text, Attachments: atts}, nil
}

// Strs returns s, never nil, so that it encodes as an array.
func Strs(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// HasBinary reports whether v holds a []byte at any depth.
func HasBinary(v any) bool {
	switch v := v.(type) {
	case []byte:
		return true
	case []any:
		for _, e := range v {
			if HasBinary(e) {
				return true
			}
		}
	case msgpack.Map:
		for _, e := range v {
			if HasBinary(e.Value) {
				return true
			}
		}
	}
	return false
}

// Accessors of decoded messages. Numbers may arrive in any MessagePack
// number format.

// GetString returns the string at key, or "".
func GetString(m msgpack.Map, key string) string {
	v, _ := m.Get(key)
	s, _ := v.(string)
	return s
}

// GetInt returns the integer at key, in any number format.
func GetInt(m msgpack.Map, key string) (int64, bool) {
	v, ok := m.Get(key)
	if !ok {
		return 0, false
	}
	switch n := v.(type) {
	case int64:
		return n, true
	case uint64:
		return math.MaxInt64, true
	case float64:
		if n == math.Trunc(n) && !math.IsInf(n, 0) && math.Abs(n) < 1<<62 {
			return int64(n), true
		}
	}
	return 0, false
}

// GetBool returns the boolean at key, false when absent.
func GetBool(m msgpack.Map, key string) bool {
	v, _ := m.Get(key)
	b, _ := v.(bool)
	return b
}

// GetMap returns the map at key.
func GetMap(m msgpack.Map, key string) (msgpack.Map, bool) {
	v, _ := m.Get(key)
	mm, ok := v.(msgpack.Map)
	return mm, ok
}

// GetRooms returns a list of room names. Rooms that arrive as numbers (a
// Node application that joined room 123) are matched by their decimal
// form, best effort.
func GetRooms(m msgpack.Map, key string) []string {
	v, _ := m.Get(key)
	a, _ := v.([]any)
	out := make([]string, 0, len(a))
	for _, e := range a {
		switch r := e.(type) {
		case string:
			out = append(out, r)
		case int64:
			out = append(out, strconv.FormatInt(r, 10))
		case uint64:
			out = append(out, strconv.FormatUint(r, 10))
		case float64:
			out = append(out, strconv.FormatFloat(r, 'f', -1, 64))
		}
	}
	return out
}

// ReplyOf converts an acknowledgement argument, as it travels through
// Redis, into a Reply with that one argument (none when it is missing).
func ReplyOf(v any, present bool) (rally.Reply, error) {
	if _, undef := v.(msgpack.Undefined); !present || undef {
		return rally.NewReply(nil, nil), nil
	}
	text, atts, err := msgpack.ToJSON(v)
	if err != nil {
		return rally.Reply{}, err
	}
	return rally.NewReply([]json.RawMessage{text}, atts), nil
}

// ReplyValue converts argument i of a Reply into a value for MessagePack,
// its binary values in place. Reply does not expose its attachments, so
// they are found by walking the JSON text (placeholders, key order) next
// to the decoded values (binary as []byte).
func ReplyValue(r rally.Reply, i int) (any, error) {
	raw := r.Raw(i)
	tree, err := msgpack.FromJSON(raw, nil)
	if err != nil {
		return nil, err
	}
	if !bytes.Contains(raw, []byte(`"_placeholder"`)) {
		return tree, nil
	}
	return graft(tree, r.Values()[i]), nil
}

// graft replaces the placeholders of tree by the []byte found at the same
// place in resolved.
func graft(tree, resolved any) any {
	switch t := tree.(type) {
	case msgpack.Map:
		if p, _ := t.Get("_placeholder"); p == true {
			if b, ok := resolved.([]byte); ok {
				return b
			}
			return t
		}
		r, _ := resolved.(map[string]any)
		out := make(msgpack.Map, len(t))
		for i, e := range t {
			out[i] = msgpack.Entry{Key: e.Key, Value: graft(e.Value, r[e.Key])}
		}
		return out
	case []any:
		r, _ := resolved.([]any)
		out := make([]any, len(t))
		for i, e := range t {
			var ri any
			if i < len(r) {
				ri = r[i]
			}
			out[i] = graft(e, ri)
		}
		return out
	}
	return tree
}

// ErrTimeout is wrapped by the error of a request that some servers did
// not answer in time.
var ErrTimeout = errors.New("redisadapter: timeout reached")

// ErrClosed is returned by operations on an adapter that was closed.
var ErrClosed = errors.New("redisadapter: adapter closed")

// TimeoutError reports which request timed out and how many answers came.
type TimeoutError struct {
	Op, NSP   string
	Got, Want int
	After     time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("redisadapter: timeout reached while waiting for %s responses on namespace %q: only %d responses received out of %d after %v",
		e.Op, e.NSP, e.Got, e.Want, e.After)
}

// Is makes errors.Is(err, ErrTimeout) hold.
func (e *TimeoutError) Is(target error) bool { return target == ErrTimeout }

// ServerEventAnswer is what answers a server-side event whose handler
// returned results and err (rally.LocalAdapter.ServerEvent): the first
// result (Node passes one argument), {"error": message} when the handler
// failed, none is registered or the result does not encode, and nil when
// it returned nothing. encodeErr is the encoding failure, for the log.
func ServerEventAnswer(results []any, err error) (answer any, encodeErr error) {
	if err != nil {
		var ee *rally.EventError
		if errors.As(err, &ee) {
			err = ee.Err
		}
		return msgpack.Map{{Key: "error", Value: err.Error()}}, nil
	}
	if len(results) == 0 {
		return nil, nil
	}
	r, err := rally.ReplyOf(results[0])
	if err == nil {
		if answer, err = ReplyValue(r, 0); err == nil {
			return answer, nil
		}
	}
	return msgpack.Map{{Key: "error", Value: err.Error()}}, err
}

// ReportPublish tells the hub's observers of a message published to the
// other servers, or of the error that kept it from them.
func ReportPublish(local *rally.LocalAdapter, err error) {
	if err != nil {
		local.Report(rally.AdapterEvent{Kind: rally.AdapterError, Err: err})
		return
	}
	local.Report(rally.AdapterEvent{Kind: rally.AdapterPublish})
}

// ReportReceive tells the hub's observers of a message received from
// another server, and of the error it was skipped for, if any.
func ReportReceive(local *rally.LocalAdapter, err error) {
	local.Report(rally.AdapterEvent{Kind: rally.AdapterReceive})
	if err != nil {
		local.Report(rally.AdapterEvent{Kind: rally.AdapterError, Err: err})
	}
}
