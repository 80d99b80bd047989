package redisadapter

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/redisadapter/internal/msgpack"
)

// Request types of the Node Redis adapter's request/response protocol (the
// numbers travel on the wire).
const (
	typeSockets              = 0
	typeAllRooms             = 1
	typeRemoteJoin           = 2
	typeRemoteLeave          = 3
	typeRemoteDisconnect     = 4
	typeRemoteFetch          = 5
	typeServerSideEmit       = 6
	typeBroadcast            = 7
	typeBroadcastClientCount = 8
	typeBroadcastAck         = 9
)

// eventPacketType is the Socket.IO EVENT packet type, the only one a
// broadcast carries.
const eventPacketType = 2

// emitterUID is the uid of the publish-only emitter.
const emitterUID = "emitter"

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// newID returns 6 random characters from A-Z a-z 0-9 - _, the form of the
// Node adapter's uids and request ids.
func newID() string {
	var b [6]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = idAlphabet[b[i]&63]
	}
	return string(b[:])
}

// packetData converts the payload of a Packet, the JSON array
// [event, args...] with placeholders, into the MessagePack data array with
// the binary values in place.
func packetData(p rally.Packet) ([]any, error) {
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

// dataPacket converts a MessagePack data array [event, args...] into a
// Packet.
func dataPacket(v any) (rally.Packet, error) {
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

// selector is the {rooms, except} part of requests.
func selector(opts rally.BroadcastOptions) msgpack.Map {
	return msgpack.Map{{Key: "rooms", Value: strs(opts.Rooms)}, {Key: "except", Value: strs(opts.Except)}}
}

// strs returns s, never nil, so that it encodes as an array.
func strs(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// broadcastMessage encodes the message a broadcast publishes:
// [uid, {type, data, nsp}, {rooms, except, flags}].
func broadcastMessage(uid, nsp string, data []any, opts rally.BroadcastOptions) ([]byte, error) {
	return msgpack.Marshal([]any{
		uid,
		eventPacket(data, nsp),
		append(selector(opts), msgpack.Entry{Key: "flags", Value: flagsOf(opts)}),
	})
}

// emitterMessage encodes the broadcast message of the emitter, which
// writes rooms, flags, except (the adapter rooms, except, flags);
// receivers do not mind the order.
func emitterMessage(nsp string, data []any, opts rally.BroadcastOptions) ([]byte, error) {
	return msgpack.Marshal([]any{
		emitterUID,
		eventPacket(data, nsp),
		msgpack.Map{{Key: "rooms", Value: strs(opts.Rooms)}, {Key: "flags", Value: flagsOf(opts)}, {Key: "except", Value: strs(opts.Except)}},
	})
}

// broadcastRequest encodes a BROADCAST (with ack) request, always
// MessagePack. A negative timeout (ms) is left out of the flags.
func broadcastRequest(uid, id, nsp string, data []any, opts rally.BroadcastOptions, timeout int64) ([]byte, error) {
	flags := msgpack.Map{}
	if timeout >= 0 {
		flags = append(flags, msgpack.Entry{Key: "timeout", Value: timeout})
	}
	if opts.Volatile {
		flags = append(flags, msgpack.Entry{Key: "volatile", Value: true})
	}
	return msgpack.Marshal(msgpack.Map{
		{Key: "uid", Value: uid},
		{Key: "requestId", Value: id},
		{Key: "type", Value: typeBroadcast},
		{Key: "packet", Value: eventPacket(data, nsp)},
		{Key: "opts", Value: append(selector(opts), msgpack.Entry{Key: "flags", Value: flags})},
	})
}

// ackResponse is the BROADCAST_ACK answer carrying a client's first ack
// argument (msgpack.Undefined when it gave none).
func ackResponse(id string, arg any) msgpack.Map {
	return msgpack.Map{{Key: "type", Value: typeBroadcastAck}, {Key: "requestId", Value: id}, {Key: "packet", Value: arg}}
}

func flagsOf(opts rally.BroadcastOptions) msgpack.Map {
	flags := msgpack.Map{}
	if opts.Volatile {
		flags = append(flags, msgpack.Entry{Key: "volatile", Value: true})
	}
	if opts.NoCompress {
		flags = append(flags, msgpack.Entry{Key: "compress", Value: false})
	}
	return flags
}

func eventPacket(data []any, nsp string) msgpack.Map {
	return msgpack.Map{{Key: "type", Value: eventPacketType}, {Key: "data", Value: data}, {Key: "nsp", Value: nsp}}
}

// broadcastChannel returns the channel of a broadcast: the room's channel
// when it targets exactly one room, the namespace's otherwise.
func broadcastChannel(base string, rooms []string) string {
	if len(rooms) == 1 {
		return base + rooms[0] + "#"
	}
	return base
}

// decodeMessage decodes a request or response: JSON when it starts with
// "{", MessagePack otherwise. JSON placeholders are left as they are.
func decodeMessage(payload []byte) (msgpack.Map, error) {
	var v any
	var err error
	if len(payload) > 0 && payload[0] == '{' {
		v, err = msgpack.FromJSON(payload, nil)
	} else {
		v, err = msgpack.Unmarshal(payload)
	}
	if err != nil {
		return nil, err
	}
	m, ok := v.(msgpack.Map)
	if !ok {
		return nil, fmt.Errorf("message is %T, want a map", v)
	}
	return m, nil
}

// encodeMessage encodes a request or response the way the Node adapter
// does: JSON, unless it holds binary values (MessagePack then, which Node
// decodes too) or msgpackAlways is set.
func encodeMessage(m msgpack.Map, msgpackAlways bool) ([]byte, error) {
	if msgpackAlways || hasBinary(m) {
		return msgpack.Marshal(m)
	}
	text, _, err := msgpack.ToJSON(m)
	return text, err
}

func hasBinary(v any) bool {
	switch v := v.(type) {
	case []byte:
		return true
	case []any:
		for _, e := range v {
			if hasBinary(e) {
				return true
			}
		}
	case msgpack.Map:
		for _, e := range v {
			if hasBinary(e.Value) {
				return true
			}
		}
	}
	return false
}

// Accessors of decoded messages. Numbers may arrive in any MessagePack
// number format.

func getString(m msgpack.Map, key string) string {
	v, _ := m.Get(key)
	s, _ := v.(string)
	return s
}

func getInt(m msgpack.Map, key string) (int64, bool) {
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

func getBool(m msgpack.Map, key string) bool {
	v, _ := m.Get(key)
	b, _ := v.(bool)
	return b
}

func getMap(m msgpack.Map, key string) (msgpack.Map, bool) {
	v, _ := m.Get(key)
	mm, ok := v.(msgpack.Map)
	return mm, ok
}

// getRooms returns a list of room names. Rooms that arrive as numbers (a
// Node application that joined room 123) are matched by their decimal
// form, best effort.
func getRooms(m msgpack.Map, key string) []string {
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

// getOptions reads the {rooms, except, flags} of a broadcast or request.
func getOptions(m msgpack.Map) rally.BroadcastOptions {
	opts := rally.BroadcastOptions{Rooms: getRooms(m, "rooms"), Except: getRooms(m, "except")}
	if flags, ok := getMap(m, "flags"); ok {
		opts.Volatile = getBool(flags, "volatile")
		if c, ok := flags.Get("compress"); ok && c == false {
			opts.NoCompress = true
		}
	}
	return opts
}

// replyOf converts an acknowledgement argument, as it travels through
// Redis, into a Reply with that one argument (none when it is missing).
func replyOf(v any, present bool) (rally.Reply, error) {
	if _, undef := v.(msgpack.Undefined); !present || undef {
		return rally.NewReply(nil, nil), nil
	}
	text, atts, err := msgpack.ToJSON(v)
	if err != nil {
		return rally.Reply{}, err
	}
	return rally.NewReply([]json.RawMessage{text}, atts), nil
}

// replyValue converts argument i of a Reply into a value for MessagePack,
// its binary values in place. Reply does not expose its attachments, so
// they are found by walking the JSON text (placeholders, key order) next
// to the decoded values (binary as []byte).
func replyValue(r rally.Reply, i int) (any, error) {
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
