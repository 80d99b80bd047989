package redisadapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/redisadapter/internal/msgpack"
	"github.com/rallyhq/rally/redisadapter/internal/wire"
)

// onBroadcast delivers another server's broadcast to the local sockets.
func (a *adapter) onBroadcast(channel string, payload []byte) error {
	if len(channel) > len(a.channel) {
		room := channel[len(a.channel) : len(channel)-1]
		if room != "" && !a.local.HasRoom(room) {
			return nil // nobody here is in that room: skip decoding
		}
	}
	v, err := msgpack.Unmarshal(payload)
	if err != nil {
		return err
	}
	msg, ok := v.([]any)
	if !ok || len(msg) < 3 {
		return fmt.Errorf("broadcast message is %T, want [uid, packet, opts]", v)
	}
	if uid, _ := msg[0].(string); uid == a.uid {
		return nil // sent by this server, which delivered it already
	}
	packet, ok := msg[1].(msgpack.Map)
	if !ok {
		return fmt.Errorf("broadcast packet is %T, want a map", msg[1])
	}
	nsp := "/"
	if v, ok := packet.Get("nsp"); ok {
		if nsp, ok = v.(string); !ok {
			return fmt.Errorf("broadcast namespace is %T, want a string", v)
		}
	}
	if nsp != a.nsp {
		return nil
	}
	opts, ok := msg[2].(msgpack.Map)
	if !ok {
		return fmt.Errorf("broadcast options are %T, want a map", msg[2])
	}
	data, _ := packet.Get("data")
	p, err := dataPacket(data)
	if err != nil {
		return err
	}
	return a.local.Broadcast(a.ctx, p, getOptions(opts))
}

// onRequest answers or applies another server's (or an emitter's) request.
func (a *adapter) onRequest(payload []byte) error {
	req, err := decodeMessage(payload)
	if err != nil {
		return err
	}
	typ, ok := getInt(req, "type")
	if !ok {
		return errors.New("request without a type")
	}
	uid, id := getString(req, "uid"), getString(req, "requestId")
	own := uid == a.uid
	switch typ {
	case typeSockets:
		if own || a.isPending(id) {
			return nil
		}
		infos, _ := a.local.FetchSockets(a.ctx, rally.BroadcastOptions{Rooms: getRooms(req, "rooms")})
		ids := make([]string, len(infos))
		for i, info := range infos {
			ids[i] = info.ID
		}
		a.respondJSON(req, struct {
			RequestID string   `json:"requestId"`
			Sockets   []string `json:"sockets"`
		}{id, ids})

	case typeAllRooms:
		if own || a.isPending(id) {
			return nil
		}
		a.respondJSON(req, struct {
			RequestID string   `json:"requestId"`
			Rooms     []string `json:"rooms"`
		}{id, strs(a.local.Rooms())})

	case typeRemoteJoin, typeRemoteLeave, typeRemoteDisconnect:
		if o, ok := getMap(req, "opts"); ok {
			if own {
				return nil // applied locally when it was sent
			}
			opts := getOptions(o)
			switch typ {
			case typeRemoteJoin:
				return a.local.SocketsJoin(a.ctx, opts, getRooms(req, "rooms"))
			case typeRemoteLeave:
				return a.local.SocketsLeave(a.ctx, opts, getRooms(req, "rooms"))
			}
			return a.local.DisconnectSockets(a.ctx, opts, getBool(req, "close"))
		}
		// Legacy single-socket form: answered by the server holding it.
		s := a.local.Namespace().Socket(getString(req, "sid"))
		if s == nil {
			return nil
		}
		switch typ {
		case typeRemoteJoin:
			s.Join(getString(req, "room"))
		case typeRemoteLeave:
			s.Leave(getString(req, "room"))
		default:
			s.Disconnect(getBool(req, "close"))
		}
		a.respondJSON(req, struct {
			RequestID string `json:"requestId"`
		}{id})

	case typeRemoteFetch:
		if own || a.isPending(id) {
			return nil
		}
		o, _ := getMap(req, "opts")
		infos, _ := a.local.FetchSockets(a.ctx, getOptions(o))
		sockets := make([]remoteSocket, len(infos))
		for i, info := range infos {
			var err error
			if sockets[i], err = toRemoteSocket(info); err != nil {
				a.log.Warn("redisadapter: socket data cannot be encoded as JSON; sent as null", "socket", info.ID, "error", err)
			}
		}
		a.respondJSON(req, struct {
			RequestID string         `json:"requestId"`
			Sockets   []remoteSocket `json:"sockets"`
		}{id, sockets})

	case typeServerSideEmit:
		if own {
			return nil
		}
		data, _ := req.Get("data")
		p, err := dataPacket(data)
		if err != nil {
			return err
		}
		_, withAck := req.Get("requestId")
		a.enqueueEvent(func() { a.serverEvent(p, id, withAck) })

	case typeBroadcast:
		if own || a.isPending(id) {
			return nil
		}
		packet, ok := getMap(req, "packet")
		if !ok {
			return errors.New("broadcast request without a packet")
		}
		data, _ := packet.Get("data")
		p, err := dataPacket(data)
		if err != nil {
			return err
		}
		o, _ := getMap(req, "opts")
		opts := getOptions(o)
		opts.Volatile = false // Node applies only rooms and except here
		ctx := a.ctx
		if flags, ok := getMap(o, "flags"); ok {
			if ms, ok := getInt(flags, "timeout"); ok && ms > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(a.ctx, time.Duration(ms)*time.Millisecond)
				context.AfterFunc(ctx, cancel)
			}
		}
		clients := func(n int) {
			a.respond(req, msgpack.Map{{Key: "type", Value: typeBroadcastClientCount}, {Key: "requestId", Value: id}, {Key: "clientCount", Value: n}}, false)
		}
		ack := func(r rally.Reply) {
			var arg any = msgpack.Undefined{}
			if r.Len() > 0 {
				v, err := replyValue(r, 0)
				if err != nil {
					a.log.Warn("redisadapter: converting a client's ack", "error", err)
					return
				}
				arg = v
			}
			a.respond(req, ackResponse(id, arg), true)
		}
		_, err = a.local.BroadcastWithAck(ctx, p, opts, clients, ack)
		return err

	default:
		a.log.Debug("redisadapter: ignoring a request of unknown type", "type", typ)
	}
	return nil
}

// onResponse hands an answer to the request of this server it answers.
func (a *adapter) onResponse(payload []byte) error {
	resp, err := decodeMessage(payload)
	if err != nil {
		return err
	}
	a.mu.Lock()
	p := a.pending[getString(resp, "requestId")]
	a.mu.Unlock()
	switch {
	case p == nil:
		// another server's request, or one that ended
	case p.handle != nil:
		p.handle(resp)
	default:
		select {
		case p.answers <- resp:
		default: // more answers than servers counted
		}
	}
	return nil
}

// serverEvent runs a server-side event from another server and, when it
// asked for an answer, publishes the handler's first result (Node passes
// one argument), or {"error": message} when the handler failed or none is
// registered.
func (a *adapter) serverEvent(p rally.Packet, id string, withAck bool) {
	results, err := a.local.ServerEvent(p)
	if !withAck {
		return
	}
	answer := msgpack.Map{{Key: "type", Value: typeServerSideEmit}, {Key: "requestId", Value: id}}
	v, encodeErr := wire.ServerEventAnswer(results, err)
	if encodeErr != nil {
		a.log.Warn("redisadapter: encoding the answer to a server-side event", "error", encodeErr)
	}
	if v != nil {
		answer = append(answer, msgpack.Entry{Key: "data", Value: v})
	}
	payload, err := encodeMessage(answer, false)
	if err != nil {
		a.log.Warn("redisadapter: encoding the answer to a server-side event", "error", err)
		return
	}
	// Answers to server-side events always go to the shared channel.
	if err := a.publish(a.ctx, a.responseChannel, payload); err != nil && a.ctx.Err() == nil {
		a.log.Warn("redisadapter: publishing the answer to a server-side event", "error", err)
	}
}

// respond publishes an answer to a request, in the background.
func (a *adapter) respond(req msgpack.Map, answer msgpack.Map, asMsgpack bool) {
	payload, err := encodeMessage(answer, asMsgpack)
	if err != nil {
		a.log.Warn("redisadapter: encoding an answer", "error", err)
		return
	}
	a.publishAsync(a.answerChannel(req), payload)
}

func (a *adapter) respondJSON(req msgpack.Map, answer any) {
	payload, err := json.Marshal(answer)
	if err != nil {
		a.log.Warn("redisadapter: encoding an answer", "error", err)
		return
	}
	a.publishAsync(a.answerChannel(req), payload)
}

func (a *adapter) answerChannel(req msgpack.Map) string {
	if uid := getString(req, "uid"); a.node.opts.PublishOnSpecificResponseChannel && uid != "" {
		return a.responseChannel + uid + "#"
	}
	return a.responseChannel
}
