package rally

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/rallyhq/rally/internal/parser"
)

// Broadcast selects sockets of a namespace: every socket, or those in some
// rooms, minus those in other rooms. It is a value: each method returns a
// new Broadcast and leaves the receiver unchanged, so selections can be
// kept and reused.
//
//	hub.To("room1").To("room2").Except("muted").Emit("news", item)
//
// The selection is evaluated when an operation runs.
type Broadcast struct {
	nsp      *Namespace
	rooms    []string
	except   []string
	volatile bool
	local    bool
}

// To adds rooms to the selection: the result selects sockets in any of the
// rooms selected so far or in these (a union; each socket gets a packet
// once).
func (b Broadcast) To(rooms ...string) Broadcast {
	b.rooms = append(slices.Clip(b.rooms), rooms...)
	return b
}

// In is the same as To.
func (b Broadcast) In(rooms ...string) Broadcast { return b.To(rooms...) }

// Except removes from the selection the sockets in any of the rooms (a
// socket id works as a room).
func (b Broadcast) Except(rooms ...string) Broadcast {
	b.except = append(slices.Clip(b.except), rooms...)
	return b
}

// Volatile marks events as droppable: a socket whose connection cannot
// take the packet at once (a write in progress, or no poll waiting) does
// not get it. Use it for frequent updates where only the latest matters.
func (b Broadcast) Volatile() Broadcast {
	b.volatile = true
	return b
}

// Local restricts the operation to the sockets of this server when
// several servers share rooms through an adapter.
func (b Broadcast) Local() Broadcast {
	b.local = true
	return b
}

// Emit sends an event to the selected sockets. The packet is encoded once
// for all of them.
func (b Broadcast) Emit(event string, args ...any) error {
	p, err := eventPacket(b.nsp.name, event, args, parser.NoID)
	if err != nil {
		return err
	}
	frames := encodeFrames(p)
	b.each(func(s *Socket) {
		if b.volatile {
			s.conn.sess.SendVolatile(frames...)
		} else {
			s.conn.sess.Send(frames...)
		}
	})
	return nil
}

// Send emits the "message" event to the selected sockets.
func (b Broadcast) Send(args ...any) error { return b.Emit("message", args...) }

// EmitWithAck sends an event to the selected sockets, asking each to
// acknowledge it, and collects the replies until every socket answered or
// ctx ends. When ctx ends first, it returns the replies received so far
// with an error wrapping ctx.Err(). With no socket selected it returns at
// once with no replies.
func (b Broadcast) EmitWithAck(ctx context.Context, event string, args ...any) ([]Reply, error) {
	id := b.nsp.nextAckID()
	p, err := eventPacket(b.nsp.name, event, args, id)
	if err != nil {
		return nil, err
	}
	frames := encodeFrames(p)
	targets := b.sockets()
	ch := make(chan Reply, len(targets))
	waiting := targets[:0]
	for _, s := range targets {
		if s.addAck(id, ch) && s.conn.sess.Send(frames...) == nil {
			waiting = append(waiting, s)
		}
	}
	defer func() {
		for _, s := range waiting {
			s.removeAck(id)
		}
	}()
	replies := make([]Reply, 0, len(waiting))
	for len(replies) < len(waiting) {
		select {
		case r := <-ch:
			replies = append(replies, r)
		case <-ctx.Done():
			return replies, fmt.Errorf("rally: waiting for the acks of %q: %d of %d answered: %w",
				event, len(replies), len(waiting), ctx.Err())
		}
	}
	return replies, nil
}

// RemoteSocket is a snapshot of a selected socket, as FetchSockets returns
// it; its methods act on the live socket, wherever it is connected.
type RemoteSocket struct {
	ID        string
	Handshake *Handshake
	Rooms     []string
	Data      any

	nsp *Namespace
}

// Emit sends an event to the socket.
func (r *RemoteSocket) Emit(event string, args ...any) error {
	return r.nsp.To(r.ID).Emit(event, args...)
}

// EmitWithAck sends an event to the socket and waits for its reply until
// ctx ends.
func (r *RemoteSocket) EmitWithAck(ctx context.Context, event string, args ...any) (Reply, error) {
	replies, err := r.nsp.To(r.ID).EmitWithAck(ctx, event, args...)
	if err != nil {
		return Reply{}, err
	}
	if len(replies) == 0 {
		return Reply{}, ErrDisconnected
	}
	return replies[0], replies[0].Err()
}

// Join adds the socket to rooms.
func (r *RemoteSocket) Join(rooms ...string) error { return r.nsp.To(r.ID).SocketsJoin(rooms...) }

// Leave removes the socket from rooms.
func (r *RemoteSocket) Leave(rooms ...string) error { return r.nsp.To(r.ID).SocketsLeave(rooms...) }

// Disconnect disconnects the socket, and closes its connection if
// closeConn is set.
func (r *RemoteSocket) Disconnect(closeConn bool) error {
	return r.nsp.To(r.ID).DisconnectSockets(closeConn)
}

// FetchSockets returns a snapshot of the selected sockets.
func (b Broadcast) FetchSockets(ctx context.Context) ([]*RemoteSocket, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []*RemoteSocket
	for _, s := range b.sockets() {
		out = append(out, &RemoteSocket{
			ID:        s.id,
			Handshake: s.handshake,
			Rooms:     s.Rooms(),
			Data:      s.Data(),
			nsp:       b.nsp,
		})
	}
	return out, nil
}

// SocketsJoin makes the selected sockets join rooms.
func (b Broadcast) SocketsJoin(rooms ...string) error {
	for _, s := range b.sockets() {
		s.Join(rooms...)
	}
	return nil
}

// SocketsLeave makes the selected sockets leave rooms.
func (b Broadcast) SocketsLeave(rooms ...string) error {
	for _, s := range b.sockets() {
		s.Leave(rooms...)
	}
	return nil
}

// DisconnectSockets disconnects the selected sockets, and closes their
// connections if closeConn is set.
func (b Broadcast) DisconnectSockets(closeConn bool) error {
	for _, s := range b.sockets() {
		s.Disconnect(closeConn)
	}
	return nil
}

// errNoNamespace guards against a zero Broadcast.
var errNoNamespace = errors.New("rally: Broadcast has no namespace; get one from a Hub, Namespace or Socket")

// sockets returns the selected connected sockets.
func (b Broadcast) sockets() []*Socket {
	var out []*Socket
	b.each(func(s *Socket) { out = append(out, s) })
	return out
}

// each calls fn for every selected connected socket, once each, while the
// namespace is read-locked: fn must not join, leave or disconnect.
func (b Broadcast) each(fn func(*Socket)) {
	if b.nsp == nil {
		panic(errNoNamespace)
	}
	n := b.nsp
	n.mu.RLock()
	defer n.mu.RUnlock()

	var except map[*Socket]struct{}
	if len(b.except) > 0 {
		except = make(map[*Socket]struct{})
		for _, room := range b.except {
			for s := range n.rooms[room] {
				except[s] = struct{}{}
			}
		}
	}
	visit := func(s *Socket) {
		if _, skip := except[s]; !skip && s.isConnected() {
			fn(s)
		}
	}
	switch len(b.rooms) {
	case 0:
		for _, s := range n.sockets {
			visit(s)
		}
	case 1:
		for s := range n.rooms[b.rooms[0]] {
			visit(s)
		}
	default:
		seen := make(map[*Socket]struct{})
		for _, room := range b.rooms {
			for s := range n.rooms[room] {
				if _, dup := seen[s]; !dup {
					seen[s] = struct{}{}
					visit(s)
				}
			}
		}
	}
}
