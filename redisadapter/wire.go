package redisadapter

import (
	"fmt"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/redisadapter/internal/msgpack"
	"github.com/rallyhq/rally/redisadapter/internal/wire"
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

// The conversions shared with the streams adapter live in internal/wire.
var (
	newID             = wire.NewID
	packetData        = wire.PacketData
	dataPacket        = wire.DataPacket
	strs              = wire.Strs
	hasBinary         = wire.HasBinary
	getString         = wire.GetString
	getInt            = wire.GetInt
	getBool           = wire.GetBool
	getMap            = wire.GetMap
	getRooms          = wire.GetRooms
	replyOf           = wire.ReplyOf
	replyValue        = wire.ReplyValue
	toNodeHandshake   = wire.ToNodeHandshake
	fromNodeHandshake = wire.FromNodeHandshake
	toRemoteSocket    = wire.ToRemoteSocket
	fromRemoteSocket  = wire.FromRemoteSocket
)

const idAlphabet = wire.IDAlphabet

type (
	nodeHandshake = wire.NodeHandshake
	remoteSocket  = wire.RemoteSocket
)

// emitterUID is the uid of the publish-only emitter.
const emitterUID = "emitter"

// selector is the {rooms, except} part of requests.
func selector(opts rally.BroadcastOptions) msgpack.Map {
	return msgpack.Map{{Key: "rooms", Value: strs(opts.Rooms)}, {Key: "except", Value: strs(opts.Except)}}
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
