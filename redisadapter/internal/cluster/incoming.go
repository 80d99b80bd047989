package cluster

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

// OnMessage handles a message or response another server published; offset
// is where the transport's log keeps it ("" when it keeps none). Messages
// of this adapter (same uid) and of other namespaces are ignored. A
// message that cannot be handled is reported as an error, for the
// transport to log; nothing else is disturbed.
func (a *Adapter) OnMessage(m *Message, offset string) (err error) {
	if m.NSP != a.nsp || a.ctx.Err() != nil {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic while handling a message of type %d: %v", m.Type, r)
		}
		wire.ReportReceive(a.local, err)
	}()
	if m.UID == a.uid {
		return nil // its own, read back from the transport
	}
	switch m.Type {
	case Broadcast:
		return a.onBroadcast(m, offset)
	case SocketsJoin, SocketsLeave, DisconnectSockets:
		o, ok := wire.GetMap(m.Data, "opts")
		if !ok {
			return fmt.Errorf("message of type %d without opts", m.Type)
		}
		opts := decodeOptions(o)
		switch m.Type {
		case SocketsJoin:
			return a.local.SocketsJoin(a.ctx, opts, wire.GetRooms(m.Data, "rooms"))
		case SocketsLeave:
			return a.local.SocketsLeave(a.ctx, opts, wire.GetRooms(m.Data, "rooms"))
		}
		return a.local.DisconnectSockets(a.ctx, opts, wire.GetBool(m.Data, "close"))
	case FetchSockets:
		return a.onFetchSockets(m)
	case ServerSideEmit:
		v, _ := m.Data.Get("packet")
		p, err := wire.DataPacket(v)
		if err != nil {
			return err
		}
		withAck, id, requester := m.HasRequestID(), m.RequestID(), m.UID
		a.enqueueEvent(func() { a.serverEvent(p, requester, id, withAck) })
		return nil
	case FetchSocketsResponse, ServerSideEmitResponse, BroadcastClientCount, BroadcastAck:
		a.onResponse(m)
		return nil
	case InitialHeartbeat, Heartbeat, AdapterClose:
		return nil // ClusterAdapterWithHeartbeat's; servers are counted by the transport
	default:
		a.log.Debug("redisadapter: ignoring a message of unknown type", "type", int(m.Type))
		return nil
	}
}

// onBroadcast delivers another server's broadcast to the local sockets;
// one with a requestId asks for the client count and the acks.
func (a *Adapter) onBroadcast(m *Message, offset string) error {
	packet, ok := wire.GetMap(m.Data, "packet")
	if !ok {
		return errors.New("broadcast without a packet")
	}
	data, _ := packet.Get("data")
	p, err := wire.DataPacket(data)
	if err != nil {
		return err
	}
	o, _ := wire.GetMap(m.Data, "opts")
	opts := decodeOptions(o)
	if !m.HasRequestID() {
		flags, _ := wire.GetMap(o, "flags")
		_, volatile := flags.Get("volatile")
		_, withID := packet.Get("id")
		if offset != "" && !volatile && !withID && a.recovering() {
			p = p.WithOffset(offset)
		}
		return a.local.Broadcast(a.ctx, p, opts)
	}
	id, requester := m.RequestID(), m.UID
	ctx := a.ctx
	if flags, ok := wire.GetMap(o, "flags"); ok {
		if ms, ok := wire.GetInt(flags, "timeout"); ok && ms > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(a.ctx, time.Duration(ms)*time.Millisecond)
			context.AfterFunc(ctx, cancel)
		}
	}
	opts.Volatile = false // Node's broadcastWithAck sends to every selected socket
	clients := func(n int) {
		a.respond(requester, BroadcastClientCount, msgpack.Map{{Key: "requestId", Value: id}, {Key: "clientCount", Value: n}})
	}
	ack := func(r rally.Reply) {
		var arg any = msgpack.Undefined{}
		if r.Len() > 0 {
			v, err := wire.ReplyValue(r, 0)
			if err != nil {
				a.log.Warn("redisadapter: converting a client's ack", "error", err)
				return
			}
			arg = v
		}
		a.respond(requester, BroadcastAck, msgpack.Map{{Key: "requestId", Value: id}, {Key: "packet", Value: arg}})
	}
	_, err = a.local.BroadcastWithAck(ctx, p, opts, clients, ack)
	return err
}

// onFetchSockets answers with the selected local sockets.
func (a *Adapter) onFetchSockets(m *Message) error {
	o, _ := wire.GetMap(m.Data, "opts")
	infos, _ := a.local.FetchSockets(a.ctx, decodeOptions(o))
	sockets := make([]wire.RemoteSocket, len(infos))
	for i, info := range infos {
		var err error
		if sockets[i], err = wire.ToRemoteSocket(info); err != nil {
			a.log.Warn("redisadapter: socket data cannot be encoded as JSON; sent as null", "socket", info.ID, "error", err)
		}
	}
	text, err := json.Marshal(sockets)
	if err != nil {
		return err
	}
	list, err := msgpack.FromJSON(text, nil)
	if err != nil {
		return err
	}
	a.respond(m.UID, FetchSocketsResponse, msgpack.Map{{Key: "requestId", Value: m.RequestID()}, {Key: "sockets", Value: list}})
	return nil
}

// onResponse hands a response to the request of this server it answers.
func (a *Adapter) onResponse(m *Message) {
	a.mu.Lock()
	p := a.pending[m.RequestID()]
	a.mu.Unlock()
	switch {
	case p == nil:
		// a request that ended
	case p.handle != nil:
		p.handle(m)
	default:
		select {
		case p.answers <- m:
		default: // more answers than servers counted
		}
	}
}

// enqueueEvent runs server-side event handlers one at a time, in order of
// arrival, off the transport's receiving goroutine (a handler may itself
// wait for answers that arrive through it).
func (a *Adapter) enqueueEvent(job func()) {
	a.mu.Lock()
	defer a.mu.Unlock() // held across Push: Close must not see tasks.Add after its Wait
	if a.closed {
		return
	}
	a.events.Push(func() {
		defer func() {
			if r := recover(); r != nil {
				a.log.Error("redisadapter: panic in a server-side event", "panic", r)
			}
		}()
		job()
	})
}

// serverEvent runs a server-side event and, when the sender asked for an
// answer, sends it the handler's first result (Node passes one argument),
// or {"error": message} when the handler failed or none is registered.
func (a *Adapter) serverEvent(p rally.Packet, requester, id string, withAck bool) {
	results, err := a.local.ServerEvent(p)
	if !withAck {
		return
	}
	answer := msgpack.Map{{Key: "requestId", Value: id}}
	v, encodeErr := wire.ServerEventAnswer(results, err)
	if encodeErr != nil {
		a.log.Warn("redisadapter: encoding the answer to a server-side event", "error", encodeErr)
	}
	if v != nil {
		answer = append(answer, msgpack.Entry{Key: "packet", Value: v})
	}
	a.sendResponse(requester, a.message(ServerSideEmitResponse, answer))
}

// respond publishes a response to requester in the background.
func (a *Adapter) respond(requester string, typ MessageType, data msgpack.Map) {
	m := a.message(typ, data)
	a.goTask(func() { a.sendResponse(requester, m) })
}

func (a *Adapter) sendResponse(requester string, m *Message) {
	ctx, cancel := context.WithTimeout(a.ctx, a.timeout)
	defer cancel()
	if err := a.t.PublishResponse(ctx, requester, m); err != nil && a.ctx.Err() == nil {
		a.log.Warn("redisadapter: publishing a response", "type", int(m.Type), "error", err)
	}
}
