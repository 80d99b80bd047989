package rally

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
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
	nsp        *Namespace
	rooms      []string
	except     []string
	volatile   bool
	local      bool
	noCompress bool
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

// Compress(false) sends the events uncompressed, even to clients that
// negotiated permessage-deflate (Node's compress(false)): for data that
// does not compress, such as images, whose deflating would only cost CPU.
// Compress(true), the default, compresses messages of 512 bytes and more
// where compression was negotiated (Options.Compression).
func (b Broadcast) Compress(on bool) Broadcast {
	b.noCompress = !on
	return b
}

// Local restricts the operation to the sockets of this server when
// several servers share rooms through an adapter.
func (b Broadcast) Local() Broadcast {
	b.local = true
	return b
}

// options returns the adapter's view of the selection.
func (b Broadcast) options() BroadcastOptions {
	if b.nsp == nil {
		panic(errNoNamespace)
	}
	return BroadcastOptions{Rooms: b.rooms, Except: b.except, Volatile: b.volatile, Local: b.local, NoCompress: b.noCompress}
}

// Emit sends an event to the selected sockets. The packet is encoded once
// for all of them.
func (b Broadcast) Emit(event string, args ...any) error {
	opts := b.options()
	p, err := NewPacket(event, args...)
	if err != nil {
		return err
	}
	return b.nsp.adapter.Broadcast(context.Background(), p, opts)
}

// Send emits the "message" event to the selected sockets.
func (b Broadcast) Send(args ...any) error { return b.Emit("message", args...) }

// EmitWithAck sends an event to the selected sockets, asking each to
// acknowledge it, and collects the replies until every socket answered or
// ctx ends. When ctx ends first, it returns the replies received so far
// with an error wrapping ctx.Err(). With no socket selected it returns at
// once with no replies.
func (b Broadcast) EmitWithAck(ctx context.Context, event string, args ...any) ([]Reply, error) {
	opts := b.options()
	p, err := NewPacket(event, args...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := newAckCollector()
	start := time.Now()
	servers, err := b.nsp.adapter.BroadcastWithAck(ctx, p, opts, c.clients, c.ack)
	if err != nil {
		return nil, err
	}
	replies, err := c.wait(ctx, event, servers)
	b.nsp.hub.noteAckRoundTrip(b.nsp, start, err)
	return replies, err
}

// ackCollector gathers the answers of a broadcast with acks from every
// server.
type ackCollector struct {
	mu       sync.Mutex
	reported int // servers that reported their client count
	expected int // acks announced by those servers
	replies  []Reply
	changed  chan struct{}
}

func newAckCollector() *ackCollector {
	return &ackCollector{changed: make(chan struct{}, 1)}
}

func (c *ackCollector) clients(n int) {
	c.mu.Lock()
	c.reported++
	c.expected += n
	c.mu.Unlock()
	c.signal()
}

func (c *ackCollector) ack(r Reply) {
	c.mu.Lock()
	c.replies = append(c.replies, r)
	c.mu.Unlock()
	c.signal()
}

func (c *ackCollector) signal() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// wait returns the replies once every server reported and every announced
// ack arrived, or what arrived when ctx ends.
func (c *ackCollector) wait(ctx context.Context, event string, servers int) ([]Reply, error) {
	for {
		c.mu.Lock()
		done := c.reported >= servers && len(c.replies) >= c.expected
		replies, expected, reported := slices.Clone(c.replies), c.expected, c.reported
		c.mu.Unlock()
		if done {
			return replies, nil
		}
		select {
		case <-c.changed:
		case <-ctx.Done():
			return replies, fmt.Errorf("rally: waiting for the acks of %q: %d of %d answered, %d of %d servers reported: %w",
				event, len(replies), expected, reported, servers, ctx.Err())
		}
	}
}

// RemoteSocket is a snapshot of a selected socket, as FetchSockets returns
// it; its methods act on the live socket, wherever it is connected.
type RemoteSocket struct {
	SocketInfo
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

// FetchSockets returns a snapshot of the selected sockets, on every server.
func (b Broadcast) FetchSockets(ctx context.Context) ([]*RemoteSocket, error) {
	opts := b.options()
	infos, err := b.nsp.adapter.FetchSockets(ctx, opts)
	if err != nil {
		return nil, err
	}
	out := make([]*RemoteSocket, len(infos))
	for i, info := range infos {
		out[i] = &RemoteSocket{SocketInfo: info, nsp: b.nsp}
	}
	return out, nil
}

// SocketsJoin makes the selected sockets join rooms.
func (b Broadcast) SocketsJoin(rooms ...string) error {
	return b.nsp.adapter.SocketsJoin(context.Background(), b.options(), rooms)
}

// SocketsLeave makes the selected sockets leave rooms.
func (b Broadcast) SocketsLeave(rooms ...string) error {
	return b.nsp.adapter.SocketsLeave(context.Background(), b.options(), rooms)
}

// DisconnectSockets disconnects the selected sockets, and closes their
// connections if closeConn is set.
func (b Broadcast) DisconnectSockets(closeConn bool) error {
	return b.nsp.adapter.DisconnectSockets(context.Background(), b.options(), closeConn)
}

// errNoNamespace guards against a zero Broadcast.
var errNoNamespace = errors.New("rally: Broadcast has no namespace; get one from a Hub, Namespace or Socket")
