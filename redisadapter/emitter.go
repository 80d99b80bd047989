package redisadapter

import (
	"context"
	"fmt"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/redisadapter/internal/msgpack"
	"github.com/redis/go-redis/v9"
)

// Emitter sends events and requests to the clients of the servers of a
// cluster from a process that serves none, like @socket.io/redis-emitter:
// it only publishes (uid "emitter"), reaching rally and Node servers
// alike.
//
//	e := redisadapter.NewEmitter(client, nil)
//	err := e.To("room1").Except("room2").Emit(ctx, "news", item)
//	err = e.Of("/admin").SocketsJoin(ctx, "watchers")
//
// An Emitter is a value: each selection method returns a new Emitter and
// leaves the receiver unchanged, so selections can be kept and reused. It
// is safe for concurrent use.
type Emitter struct {
	client   redis.UniversalClient
	key      string
	nsp      string
	rooms    []string
	except   []string
	volatile bool
}

// NewEmitter returns an Emitter for the main namespace "/" publishing
// through client. Of opts only Key is used; nil means "socket.io".
func NewEmitter(client redis.UniversalClient, opts *Options) Emitter {
	key := "socket.io"
	if opts != nil && opts.Key != "" {
		key = opts.Key
	}
	return Emitter{client: client, key: key, nsp: "/"}
}

// Of returns an Emitter for namespace nsp ("admin" and "/admin" are the
// same), selecting all its sockets.
func (e Emitter) Of(nsp string) Emitter {
	if len(nsp) == 0 || nsp[0] != '/' {
		nsp = "/" + nsp
	}
	return Emitter{client: e.client, key: e.key, nsp: nsp}
}

// To adds rooms to the selection: sockets in any of them are selected.
func (e Emitter) To(rooms ...string) Emitter {
	e.rooms = append(e.rooms[:len(e.rooms):len(e.rooms)], rooms...)
	return e
}

// In is the same as To.
func (e Emitter) In(rooms ...string) Emitter { return e.To(rooms...) }

// Except removes from the selection the sockets in any of the rooms.
func (e Emitter) Except(rooms ...string) Emitter {
	e.except = append(e.except[:len(e.except):len(e.except)], rooms...)
	return e
}

// Volatile marks events as droppable by servers whose clients cannot take
// them at once.
func (e Emitter) Volatile() Emitter {
	e.volatile = true
	return e
}

func (e Emitter) options() rally.BroadcastOptions {
	return rally.BroadcastOptions{Rooms: e.rooms, Except: e.except, Volatile: e.volatile}
}

// Emit sends an event to the selected sockets of every server. Arguments
// are encoded as for rally's Emit ([]byte values travel as binary).
// Reserved event names ("connect", "disconnect", ...) are refused.
func (e Emitter) Emit(ctx context.Context, event string, args ...any) error {
	p, err := rally.NewPacket(event, args...)
	if err != nil {
		return err
	}
	data, err := packetData(p)
	if err != nil {
		return err
	}
	msg, err := emitterMessage(e.nsp, data, e.options())
	if err != nil {
		return fmt.Errorf("redisadapter: emitter: encoding %q: %w", event, err)
	}
	channel := broadcastChannel(e.key+"#"+e.nsp+"#", e.rooms)
	if err := e.client.Publish(ctx, channel, msg).Err(); err != nil {
		return fmt.Errorf("redisadapter: emitter: publishing %q: %w", event, err)
	}
	return nil
}

// SocketsJoin makes the selected sockets of every server join rooms.
func (e Emitter) SocketsJoin(ctx context.Context, rooms ...string) error {
	return e.request(ctx, "socketsJoin", msgpack.Map{
		{Key: "type", Value: typeRemoteJoin}, {Key: "opts", Value: selector(e.options())}, {Key: "rooms", Value: strs(rooms)},
	})
}

// SocketsLeave makes the selected sockets of every server leave rooms.
func (e Emitter) SocketsLeave(ctx context.Context, rooms ...string) error {
	return e.request(ctx, "socketsLeave", msgpack.Map{
		{Key: "type", Value: typeRemoteLeave}, {Key: "opts", Value: selector(e.options())}, {Key: "rooms", Value: strs(rooms)},
	})
}

// DisconnectSockets disconnects the selected sockets of every server, and
// closes their connections if closeConn is set.
func (e Emitter) DisconnectSockets(ctx context.Context, closeConn bool) error {
	return e.request(ctx, "disconnectSockets", msgpack.Map{
		{Key: "type", Value: typeRemoteDisconnect}, {Key: "opts", Value: selector(e.options())}, {Key: "close", Value: closeConn},
	})
}

// ServerSideEmit sends an event to the server-side handlers
// (rally's OnServerEvent, Node's serverSideEmit listeners) of every
// server of the namespace. Acknowledgements are not supported, as with
// the Node emitter. The names Node reserves ("connect", "connection",
// "new_namespace" and the reserved event names) are refused.
func (e Emitter) ServerSideEmit(ctx context.Context, event string, args ...any) error {
	switch event {
	case "connection", "new_namespace":
		return fmt.Errorf("redisadapter: emitter: %q is a reserved event name", event)
	}
	p, err := rally.NewPacket(event, args...)
	if err != nil {
		return err
	}
	data, err := packetData(p)
	if err != nil {
		return err
	}
	return e.request(ctx, "serverSideEmit", msgpack.Map{
		{Key: "uid", Value: emitterUID}, {Key: "type", Value: typeServerSideEmit}, {Key: "data", Value: data},
	})
}

// request publishes a request on the namespace's request channel. Like the
// Node emitter's, join, leave and disconnect requests carry no uid, so
// every server applies them.
func (e Emitter) request(ctx context.Context, op string, req msgpack.Map) error {
	payload, err := encodeMessage(req, false)
	if err != nil {
		return fmt.Errorf("redisadapter: emitter: %s: %w", op, err)
	}
	if err := e.client.Publish(ctx, e.key+"-request#"+e.nsp+"#", payload).Err(); err != nil {
		return fmt.Errorf("redisadapter: emitter: %s: publishing: %w", op, err)
	}
	return nil
}
