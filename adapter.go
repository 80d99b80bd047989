package rally

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"

	"github.com/rallyhq/rally/internal/callback"
	"github.com/rallyhq/rally/internal/engineio"
	"github.com/rallyhq/rally/internal/parser"
)

// Packet is an event as adapters carry it between servers.
type Packet struct {
	// Data is the JSON array [event, args...] with binary values replaced by
	// placeholders ({"_placeholder":true,"num":N}).
	Data json.RawMessage
	// Attachments holds the binary values, in placeholder order.
	Attachments [][]byte
}

// BroadcastOptions select the sockets of an adapter operation.
type BroadcastOptions struct {
	// Rooms selects the sockets in any of these rooms; every socket when
	// empty.
	Rooms []string
	// Except removes the sockets in any of these rooms (socket ids are
	// rooms).
	Except []string
	// Volatile lets the packet be dropped for sockets that cannot take it
	// at once.
	Volatile bool
	// Local restricts the operation to this server.
	Local bool
	// NoCompress sends the packet uncompressed (Node's compress: false).
	NoCompress bool
}

// SocketInfo describes a socket, wherever it is connected.
type SocketInfo struct {
	ID        string
	Handshake *Handshake
	Rooms     []string
	// Data is the socket's SetData value; for a socket on another server,
	// its JSON form decoded into a Go value.
	Data any
}

// Adapter carries the operations of one namespace to the sockets of every
// server that serves it. The hub creates one per namespace with
// Options.Adapter; the default is the LocalAdapter, which knows only this
// server. Adapters that span servers apply each operation locally through
// the LocalAdapter they were given, and forward it to the other servers,
// which apply it through theirs.
type Adapter interface {
	// Broadcast sends p to the selected sockets.
	Broadcast(ctx context.Context, p Packet, opts BroadcastOptions) error
	// BroadcastWithAck sends p to the selected sockets asking each to
	// acknowledge it. Each server reached calls clients once with the
	// number of sockets it sent p to, then ack once per acknowledgement,
	// until ctx ends; both may be called concurrently. It returns how many
	// servers will call clients, this one included.
	BroadcastWithAck(ctx context.Context, p Packet, opts BroadcastOptions, clients func(n int), ack func(Reply)) (servers int, err error)
	// SocketsJoin makes the selected sockets join rooms.
	SocketsJoin(ctx context.Context, opts BroadcastOptions, rooms []string) error
	// SocketsLeave makes the selected sockets leave rooms.
	SocketsLeave(ctx context.Context, opts BroadcastOptions, rooms []string) error
	// DisconnectSockets disconnects the selected sockets, closing their
	// connections if closeConn is set.
	DisconnectSockets(ctx context.Context, opts BroadcastOptions, closeConn bool) error
	// FetchSockets describes the selected sockets.
	FetchSockets(ctx context.Context, opts BroadcastOptions) ([]SocketInfo, error)
	// ServerSideEmit delivers p to the OnServerEvent handlers of the other
	// servers, not this one. With ack set, it waits until each answered or
	// ctx ends, and returns the answers.
	ServerSideEmit(ctx context.Context, p Packet, ack bool) ([]Reply, error)
	// Close releases what the adapter holds; the hub calls it on shutdown.
	Close() error
}

// LocalAdapter is the in-memory adapter: it applies operations to the
// sockets of this server only. It is the default Adapter, and adapters that
// span servers use it for their local part.
type LocalAdapter struct {
	nsp *Namespace
}

var _ Adapter = (*LocalAdapter)(nil)

// Namespace returns the namespace the adapter serves.
func (a *LocalAdapter) Namespace() *Namespace { return a.nsp }

// Broadcast sends p to the selected sockets of this server, encoding it
// once for all of them.
func (a *LocalAdapter) Broadcast(_ context.Context, p Packet, opts BroadcastOptions) error {
	a.notify(p, a.deliver(p, opts))
	return nil
}

// delivery is what deliver did, for notify.
type delivery struct {
	listening                   []*Socket // recipients with OnAnyOutgoing listeners
	recipients, volatileDropped int
}

// deliver sends p to the selected sockets.
func (a *LocalAdapter) deliver(p Packet, opts BroadcastOptions) delivery {
	frames := a.nsp.hub.encodeFrames(a.packet(p, parser.NoID))
	uncompressed(frames, opts)
	var v3 []engineio.Frame // frames for v2 clients, made for the first
	var d delivery
	a.nsp.each(opts, func(s *Socket) {
		frames := frames
		if s.conn.v3 {
			if v3 == nil {
				v3 = engineio.EIO3Frames(frames)
			}
			frames = v3
		}
		if opts.Volatile {
			if !s.conn.sess.SendVolatile(frames...) {
				d.volatileDropped++
				return
			}
		} else if s.conn.sess.Send(frames...) != nil {
			return // the connection is closing, or its queue is full
		}
		d.recipients++
		if s.listensOutgoing() {
			d.listening = append(d.listening, s)
		}
	})
	return d
}

// notify tells the OnAnyOutgoing listeners of the recipients and the
// hub's observers of a delivery, out of every lock: they may emit.
func (a *LocalAdapter) notify(p Packet, d delivery) {
	for _, s := range d.listening {
		s.notifyOutgoing(p.Data, p.Attachments)
	}
	h := a.nsp.hub
	if len(h.observers()) == 0 {
		return
	}
	h.noteBroadcast(a.nsp, d.recipients)
	for range d.volatileDropped {
		h.noteVolatileDropped(a.nsp)
	}
}

// uncompressed marks frames to be sent uncompressed when opts ask for it.
func uncompressed(frames []engineio.Frame, opts BroadcastOptions) {
	if opts.NoCompress {
		for i := range frames {
			frames[i].NoCompress = true
		}
	}
}

// packet builds the Socket.IO packet of an event.
func (a *LocalAdapter) packet(p Packet, id int64) *parser.Packet {
	typ := parser.Event
	if len(p.Attachments) > 0 {
		typ = parser.BinaryEvent
	}
	return &parser.Packet{Type: typ, Namespace: a.nsp.name, ID: id, Data: p.Data, Attachments: p.Attachments}
}

// BroadcastWithAck sends p to the selected sockets of this server with a
// new ack id, calls clients with their number, and ack with each answer
// received before ctx ends. It returns 1.
func (a *LocalAdapter) BroadcastWithAck(ctx context.Context, p Packet, opts BroadcastOptions, clients func(int), ack func(Reply)) (int, error) {
	id := a.nsp.nextAckID()
	frames := a.nsp.hub.encodeFrames(a.packet(p, id))
	uncompressed(frames, opts)
	var reached []*Socket
	var v3 []engineio.Frame // frames for v2 clients, made for the first
	for _, s := range a.nsp.selected(opts) {
		frames := frames
		if s.conn.v3 {
			if v3 == nil {
				v3 = engineio.EIO3Frames(frames)
			}
			frames = v3
		}
		if s.addAck(id, ack) && s.conn.sess.Send(frames...) == nil {
			reached = append(reached, s)
			if s.listensOutgoing() {
				s.notifyOutgoing(p.Data, p.Attachments)
			}
		}
	}
	clients(len(reached))
	a.nsp.hub.noteBroadcast(a.nsp, len(reached))
	if len(reached) > 0 {
		context.AfterFunc(ctx, func() {
			for _, s := range reached {
				s.removeAck(id)
			}
		})
	}
	return 1, nil
}

// SocketsJoin makes the selected sockets of this server join rooms.
func (a *LocalAdapter) SocketsJoin(_ context.Context, opts BroadcastOptions, rooms []string) error {
	for _, s := range a.nsp.selected(opts) {
		s.Join(rooms...)
	}
	return nil
}

// SocketsLeave makes the selected sockets of this server leave rooms.
func (a *LocalAdapter) SocketsLeave(_ context.Context, opts BroadcastOptions, rooms []string) error {
	for _, s := range a.nsp.selected(opts) {
		s.Leave(rooms...)
	}
	return nil
}

// DisconnectSockets disconnects the selected sockets of this server.
func (a *LocalAdapter) DisconnectSockets(_ context.Context, opts BroadcastOptions, closeConn bool) error {
	for _, s := range a.nsp.selected(opts) {
		s.Disconnect(closeConn)
	}
	return nil
}

// FetchSockets describes the selected sockets of this server.
func (a *LocalAdapter) FetchSockets(_ context.Context, opts BroadcastOptions) ([]SocketInfo, error) {
	var out []SocketInfo
	for _, s := range a.nsp.selected(opts) {
		out = append(out, SocketInfo{ID: s.id, Handshake: s.handshake, Rooms: s.Rooms(), Data: s.Data()})
	}
	return out, nil
}

// ServerSideEmit does nothing: there is no other server.
func (a *LocalAdapter) ServerSideEmit(context.Context, Packet, bool) ([]Reply, error) {
	return nil, nil
}

// Close does nothing.
func (a *LocalAdapter) Close() error { return nil }

// Rooms returns the names of the rooms of this server's sockets, socket id
// rooms included.
func (a *LocalAdapter) Rooms() []string {
	n := a.nsp
	n.mu.RLock()
	defer n.mu.RUnlock()
	return slices.Sorted(maps.Keys(n.rooms))
}

// HasRoom reports whether a socket of this server is in room.
func (a *LocalAdapter) HasRoom(room string) bool {
	n := a.nsp
	n.mu.RLock()
	defer n.mu.RUnlock()
	return len(n.rooms[room]) > 0
}

// ServerEvent runs the OnServerEvent handler of the event in p, sent by
// another server, and returns its results. An event without a handler
// returns ErrNoHandler.
func (a *LocalAdapter) ServerEvent(p Packet) ([]any, error) {
	if err := parser.ValidateEvent(p.Data, len(p.Attachments)); err != nil {
		return nil, fmt.Errorf("rally: server event: %w", err)
	}
	elems, err := parser.SplitArray(p.Data)
	if err != nil || len(elems) == 0 {
		return nil, fmt.Errorf("rally: server event: invalid payload")
	}
	event, ok := parser.EventName(p.Data)
	if !ok {
		return nil, fmt.Errorf("rally: server event: invalid event name")
	}
	f := a.nsp.serverHandler(event)
	if f == nil {
		return nil, &EventError{Event: event, Err: ErrNoHandler}
	}
	results, err := f.Call(nil, elems[1:], p.Attachments, reflect.Value{})
	if err != nil {
		a.nsp.hub.reportError(nil, &EventError{Event: event, Err: err})
		if callback.IsPanic(err) {
			err = errInternal // the panic stays in this server's logs
		}
		return nil, &EventError{Event: event, Err: err}
	}
	return results, nil
}

var errInternal = errors.New("internal server error")

// NewPacket encodes an event and its arguments as a Packet.
func NewPacket(event string, args ...any) (Packet, error) {
	if parser.IsReserved(event) {
		return Packet{}, fmt.Errorf("rally: %q is a reserved event name", event)
	}
	if len(event) > parser.MaxEventLen {
		return Packet{}, fmt.Errorf("rally: event name of %d bytes, at most %d", len(event), parser.MaxEventLen)
	}
	data, atts, err := parser.MarshalEvent(event, args)
	if err != nil {
		return Packet{}, fmt.Errorf("rally: emitting %q: %w", event, err)
	}
	return Packet{Data: data, Attachments: atts}, nil
}

// mustServerHandler checks an OnServerEvent handler: like an event
// handler, without the *Socket parameter.
func mustServerHandler(event string, handler any) *callback.Func {
	if event == "" || parser.IsReserved(event) {
		panic(fmt.Sprintf("rally: OnServerEvent(%q): empty or reserved event name", event))
	}
	f, err := callback.New(fmt.Sprintf("rally: OnServerEvent(%q)", event), handler)
	if err != nil {
		panic(err.Error())
	}
	return f
}
