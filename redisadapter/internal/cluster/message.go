// Package cluster implements the message protocol of socket.io-adapter's
// ClusterAdapter (2.5), which the Node adapters @socket.io/redis-streams-adapter
// 0.3 and the sharded @socket.io/redis-adapter 8.x speak, over a small
// Transport: a transport publishes messages to every server of a namespace
// and responses to one of them, counts the servers, and hands what it
// receives to Adapter.OnMessage.
//
// A message is {uid, nsp, type, data}: uid the sending adapter's random id
// (16 hex digits), nsp its namespace, type a MessageType, data an object
// whose fields depend on the type (see the constructors in adapter.go).
// Requests carry a requestId; their responses go to the requester alone
// and carry the same requestId.
package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/rallyhq/rally/redisadapter/internal/msgpack"
	"github.com/rallyhq/rally/redisadapter/internal/wire"
)

// MessageType is the type of a cluster message; the numbers travel on the
// wire.
type MessageType int

// The message types of socket.io-adapter's ClusterAdapter.
const (
	InitialHeartbeat       MessageType = 1
	Heartbeat              MessageType = 2
	Broadcast              MessageType = 3
	SocketsJoin            MessageType = 4
	SocketsLeave           MessageType = 5
	DisconnectSockets      MessageType = 6
	FetchSockets           MessageType = 7
	FetchSocketsResponse   MessageType = 8
	ServerSideEmit         MessageType = 9
	ServerSideEmitResponse MessageType = 10
	BroadcastClientCount   MessageType = 11
	BroadcastAck           MessageType = 12
	AdapterClose           MessageType = 13
)

// Message is a cluster message or response.
type Message struct {
	UID  string
	NSP  string
	Type MessageType
	// Data holds the type's fields; nil for the heartbeats and
	// ADAPTER_CLOSE, which have none.
	Data msgpack.Map
}

// RequestID returns the requestId of m's data, or "".
func (m *Message) RequestID() string { return wire.GetString(m.Data, "requestId") }

// HasRequestID reports whether m's data has a requestId: a BROADCAST with
// one asks for acks, a SERVER_SIDE_EMIT with one for an answer.
func (m *Message) HasRequestID() bool {
	_, ok := m.Data.Get("requestId")
	return ok
}

// fields returns m as the object Node's adapters publish: {type, data,
// uid, nsp}, in the order Node builds it.
func (m *Message) fields() msgpack.Map {
	out := msgpack.Map{{Key: "type", Value: int(m.Type)}}
	if m.Data != nil {
		out = append(out, msgpack.Entry{Key: "data", Value: m.Data})
	}
	return append(out, msgpack.Entry{Key: "uid", Value: m.UID}, msgpack.Entry{Key: "nsp", Value: m.NSP})
}

// Marshal encodes m as one MessagePack map, as Node's adapters publish
// messages on pub/sub channels.
func (m *Message) Marshal() ([]byte, error) { return msgpack.Marshal(m.fields()) }

// MarshalJSON encodes m as JSON text, as JSON.stringify writes a message
// without binary values. A message with binary values cannot be written
// as JSON: use Marshal.
func (m *Message) MarshalJSON() ([]byte, error) {
	text, attachments, err := msgpack.ToJSON(m.fields())
	if err != nil {
		return nil, err
	}
	if len(attachments) > 0 {
		return nil, fmt.Errorf("cluster message of type %d holds binary values: not JSON", m.Type)
	}
	return text, nil
}

// Unmarshal decodes a message that Marshal, or a Node adapter, encoded.
func Unmarshal(payload []byte) (*Message, error) {
	v, err := msgpack.Unmarshal(payload)
	if err != nil {
		return nil, err
	}
	return fromValue(v)
}

// Decode decodes a message encoded either way, as Node's sharded adapter
// reads them: JSON when the payload starts with "{", MessagePack
// otherwise.
func Decode(payload []byte) (*Message, error) {
	if len(payload) == 0 || payload[0] != '{' {
		return Unmarshal(payload)
	}
	v, err := msgpack.FromJSON(payload, nil)
	if err != nil {
		return nil, err
	}
	return fromValue(v)
}

func fromValue(v any) (*Message, error) {
	m, ok := v.(msgpack.Map)
	if !ok {
		return nil, fmt.Errorf("cluster message is %T, want a map", v)
	}
	typ, ok := wire.GetInt(m, "type")
	if !ok {
		return nil, fmt.Errorf("cluster message without a numeric type")
	}
	msg := &Message{UID: wire.GetString(m, "uid"), NSP: wire.GetString(m, "nsp"), Type: MessageType(typ)}
	if d, present := m.Get("data"); present && d != nil {
		if msg.Data, ok = d.(msgpack.Map); !ok {
			return nil, fmt.Errorf("cluster message data is %T, want a map", d)
		}
	}
	return msg, nil
}

// NewID returns 16 random hex digits, the form of ClusterAdapter's uids
// and request ids.
func NewID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
