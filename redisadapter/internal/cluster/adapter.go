package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/internal/serial"
	"github.com/rallyhq/rally/redisadapter/internal/msgpack"
	"github.com/rallyhq/rally/redisadapter/internal/wire"
)

// Transport carries the messages of one namespace's adapter between
// servers.
type Transport interface {
	// Publish sends m to every server of the namespace (its own included,
	// which ignores it by uid) and returns the offset it was stored at,
	// or "" when the transport keeps no log.
	Publish(ctx context.Context, m *Message) (offset string, err error)
	// PublishResponse sends m to the server whose adapter uid is
	// requester.
	PublishResponse(ctx context.Context, requester string, m *Message) error
	// ServerCount returns how many servers serve the namespace, this one
	// included.
	ServerCount(ctx context.Context) (int, error)
}

// Sender is a Transport that can also queue a message without waiting for
// it, behind those it is publishing, and report it to the hub's observers
// itself. Broadcasts without acks then go through Send: as in Node, they do
// not wait for Redis.
type Sender interface {
	Send(m *Message) error
}

// Options configures an Adapter.
type Options struct {
	// Timeout bounds the wait for the answers of FetchSockets and
	// ServerSideEmit with ack, and each publish (Node's 5s).
	Timeout time.Duration
	// Logger receives what cannot be delivered or answered.
	Logger *slog.Logger
}

// Adapter is a rally.Adapter that speaks the ClusterAdapter protocol over
// a Transport. Operations are applied locally through the LocalAdapter and
// published for the other servers; what the transport receives is handed
// to OnMessage.
type Adapter struct {
	local   *rally.LocalAdapter
	t       Transport
	uid     string
	nsp     string
	timeout time.Duration
	log     *slog.Logger

	ctx    context.Context // ends on Close
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	pending map[string]*pending // by requestId
	tasks   sync.WaitGroup      // responses being published, the event worker
	events  serial.Queue        // server-side events, one at a time
}

// pending is a request of this server waiting for answers.
type pending struct {
	answers chan *Message    // counted answers (fetch, server-side emit)
	handle  func(m *Message) // broadcast with ack: client counts and acks
}

var _ rally.Adapter = (*Adapter)(nil)

// New returns the adapter of local's namespace, whose uid is uid (see
// NewID), publishing through t.
func New(local *rally.LocalAdapter, uid string, t Transport, opts Options) *Adapter {
	a := &Adapter{
		local:   local,
		t:       t,
		uid:     uid,
		nsp:     local.Namespace().Name(),
		timeout: opts.Timeout,
		log:     opts.Logger,
		pending: make(map[string]*pending),
	}
	if a.timeout <= 0 {
		a.timeout = 5 * time.Second
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.events = serial.Queue{
		Start: func(drain func()) { a.tasks.Add(1); go drain() },
		Done:  a.tasks.Done,
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	return a
}

// UID returns the adapter's uid.
func (a *Adapter) UID() string { return a.uid }

// Local returns the adapter's LocalAdapter.
func (a *Adapter) Local() *rally.LocalAdapter { return a.local }

// Context returns a context that ends when the adapter is closed.
func (a *Adapter) Context() context.Context { return a.ctx }

// recovering reports whether broadcasts get offsets.
func (a *Adapter) recovering() bool { return a.local.Recovery() != nil }

// message returns a message of this adapter.
func (a *Adapter) message(typ MessageType, data msgpack.Map) *Message {
	return &Message{UID: a.uid, NSP: a.nsp, Type: typ, Data: data}
}

// publish publishes m within the timeout.
func (a *Adapter) publish(ctx context.Context, m *Message) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	offset, err := a.t.Publish(ctx, m)
	wire.ReportPublish(a.local, err)
	return offset, err
}

// encodeOptions is Node's {rooms, except, flags}.
func encodeOptions(opts rally.BroadcastOptions, flags msgpack.Map) msgpack.Map {
	if flags == nil {
		flags = msgpack.Map{}
		if opts.Volatile {
			flags = append(flags, msgpack.Entry{Key: "volatile", Value: true})
		}
		if opts.NoCompress {
			flags = append(flags, msgpack.Entry{Key: "compress", Value: false})
		}
	}
	return msgpack.Map{{Key: "rooms", Value: wire.Strs(opts.Rooms)}, {Key: "except", Value: wire.Strs(opts.Except)}, {Key: "flags", Value: flags}}
}

// decodeOptions reads {rooms, except, flags}.
func decodeOptions(m msgpack.Map) rally.BroadcastOptions {
	opts := rally.BroadcastOptions{Rooms: wire.GetRooms(m, "rooms"), Except: wire.GetRooms(m, "except")}
	if flags, ok := wire.GetMap(m, "flags"); ok {
		opts.Volatile = wire.GetBool(flags, "volatile")
		if c, ok := flags.Get("compress"); ok && c == false {
			opts.NoCompress = true
		}
	}
	return opts
}

// packetMap is the Socket.IO packet of a broadcast as Node publishes it:
// {type: 2, data}, without nsp (set by the receiver).
func packetMap(data []any) msgpack.Map {
	return msgpack.Map{{Key: "type", Value: 2}, {Key: "data", Value: data}}
}

// Broadcast publishes p, then delivers it to the selected local sockets,
// with its offset appended when recovery is on and p is not volatile (as
// Node's addOffsetIfNecessary). When the publish fails, p is still
// delivered locally, without offset, and the error is returned.
func (a *Adapter) Broadcast(ctx context.Context, p rally.Packet, opts rally.BroadcastOptions) error {
	if opts.Local {
		return a.local.Broadcast(ctx, p, opts)
	}
	data, err := wire.PacketData(p)
	if err != nil {
		return err
	}
	m := a.message(Broadcast, msgpack.Map{
		{Key: "packet", Value: packetMap(data)}, {Key: "opts", Value: encodeOptions(opts, nil)},
	})
	if s, ok := a.t.(Sender); ok {
		if err := a.local.Broadcast(ctx, p, opts); err != nil {
			return err
		}
		if err := s.Send(m); err != nil {
			return fmt.Errorf("redisadapter: publishing a broadcast: %w", err)
		}
		return nil
	}
	offset, perr := a.publish(ctx, m)
	if perr == nil && offset != "" && !opts.Volatile && a.recovering() {
		p = p.WithOffset(offset)
	}
	if err := a.local.Broadcast(ctx, p, opts); err != nil {
		return err
	}
	if perr != nil {
		return fmt.Errorf("redisadapter: publishing a broadcast: %w", perr)
	}
	return nil
}

// BroadcastWithAck publishes a BROADCAST with a requestId, whose receivers
// answer with their client count and their clients' acks, then sends p to
// the local sockets.
func (a *Adapter) BroadcastWithAck(ctx context.Context, p rally.Packet, opts rally.BroadcastOptions, clients func(int), ack func(rally.Reply)) (int, error) {
	if opts.Local {
		return a.local.BroadcastWithAck(ctx, p, opts, clients, ack)
	}
	data, err := wire.PacketData(p)
	if err != nil {
		return 0, err
	}
	servers, err := a.serverCount(ctx)
	if err != nil {
		return 0, err
	}
	flags := encodeOptions(opts, nil)[2].Value.(msgpack.Map)
	if deadline, ok := ctx.Deadline(); ok {
		flags = append(flags, msgpack.Entry{Key: "timeout", Value: max(time.Until(deadline).Milliseconds(), 0)})
	}
	id := NewID()
	handle := func(m *Message) {
		switch m.Type {
		case BroadcastClientCount:
			n, _ := wire.GetInt(m.Data, "clientCount")
			clients(int(n))
		case BroadcastAck:
			v, present := m.Data.Get("packet")
			r, err := wire.ReplyOf(v, present)
			if err != nil {
				a.log.Warn("redisadapter: skipping an ack that cannot be converted", "error", err)
				return
			}
			ack(r)
		}
	}
	if err := a.addPending(id, &pending{handle: handle}); err != nil {
		return 0, err
	}
	context.AfterFunc(ctx, func() { a.removePending(id) })
	if _, err := a.publish(ctx, a.message(Broadcast, msgpack.Map{
		{Key: "packet", Value: packetMap(data)}, {Key: "requestId", Value: id}, {Key: "opts", Value: encodeOptions(opts, flags)},
	})); err != nil {
		a.removePending(id)
		return 0, fmt.Errorf("redisadapter: publishing a broadcast with ack: %w", err)
	}
	if _, err := a.local.BroadcastWithAck(ctx, p, opts, clients, ack); err != nil {
		return 0, err
	}
	return max(servers, 1), nil
}

// SocketsJoin publishes the join, then applies it locally.
func (a *Adapter) SocketsJoin(ctx context.Context, opts rally.BroadcastOptions, rooms []string) error {
	return a.apply(ctx, opts, "socketsJoin", SocketsJoin, msgpack.Entry{Key: "rooms", Value: wire.Strs(rooms)},
		func() error { return a.local.SocketsJoin(ctx, opts, rooms) })
}

// SocketsLeave publishes the leave, then applies it locally.
func (a *Adapter) SocketsLeave(ctx context.Context, opts rally.BroadcastOptions, rooms []string) error {
	return a.apply(ctx, opts, "socketsLeave", SocketsLeave, msgpack.Entry{Key: "rooms", Value: wire.Strs(rooms)},
		func() error { return a.local.SocketsLeave(ctx, opts, rooms) })
}

// DisconnectSockets publishes the disconnection, then applies it locally.
func (a *Adapter) DisconnectSockets(ctx context.Context, opts rally.BroadcastOptions, closeConn bool) error {
	return a.apply(ctx, opts, "disconnectSockets", DisconnectSockets, msgpack.Entry{Key: "close", Value: closeConn},
		func() error { return a.local.DisconnectSockets(ctx, opts, closeConn) })
}

// apply publishes an operation unless it is local, then applies it here
// (also when the publish failed, as Node does).
func (a *Adapter) apply(ctx context.Context, opts rally.BroadcastOptions, op string, typ MessageType, arg msgpack.Entry, local func() error) error {
	var perr error
	if !opts.Local {
		_, perr = a.publish(ctx, a.message(typ, msgpack.Map{{Key: "opts", Value: encodeOptions(opts, nil)}, arg}))
	}
	if err := local(); err != nil {
		return err
	}
	if perr != nil {
		return fmt.Errorf("redisadapter: %s: publishing the request: %w", op, perr)
	}
	return nil
}

// FetchSockets returns the selected local sockets and those of every other
// server, which each answer once.
func (a *Adapter) FetchSockets(ctx context.Context, opts rally.BroadcastOptions) ([]rally.SocketInfo, error) {
	infos, err := a.local.FetchSockets(ctx, opts)
	if err != nil || opts.Local {
		return infos, err
	}
	servers, err := a.serverCount(ctx)
	if err != nil {
		return nil, err
	}
	if servers <= 1 {
		return infos, nil
	}
	id := NewID()
	answers, err := a.request(ctx, "fetchSockets", a.message(FetchSockets, msgpack.Map{
		{Key: "opts", Value: encodeOptions(opts, nil)}, {Key: "requestId", Value: id},
	}), id, servers-1)
	for _, ans := range answers {
		v, _ := ans.Data.Get("sockets")
		text, _, jerr := msgpack.ToJSON(v)
		var sockets []wire.RemoteSocket
		if jerr == nil {
			jerr = json.Unmarshal(text, &sockets)
		}
		if jerr != nil {
			a.log.Warn("redisadapter: skipping a malformed fetchSockets answer", "error", jerr)
			continue
		}
		for _, rs := range sockets {
			infos = append(infos, wire.FromRemoteSocket(rs))
		}
	}
	return infos, err
}

// ServerSideEmit publishes a server-side event for the other servers and,
// with ack, collects one answer from each.
func (a *Adapter) ServerSideEmit(ctx context.Context, p rally.Packet, ack bool) ([]rally.Reply, error) {
	data, err := wire.PacketData(p)
	if err != nil {
		return nil, err
	}
	if !ack {
		if _, err := a.publish(ctx, a.message(ServerSideEmit, msgpack.Map{{Key: "packet", Value: data}})); err != nil {
			return nil, fmt.Errorf("redisadapter: serverSideEmit: publishing: %w", err)
		}
		return nil, nil
	}
	servers, err := a.serverCount(ctx)
	if err != nil {
		return nil, err
	}
	if servers <= 1 {
		return []rally.Reply{}, nil
	}
	id := NewID()
	answers, err := a.request(ctx, "serverSideEmit", a.message(ServerSideEmit, msgpack.Map{
		{Key: "requestId", Value: id}, {Key: "packet", Value: data},
	}), id, servers-1)
	event := data[0].(string)
	replies := make([]rally.Reply, 0, len(answers))
	var failed error
	for _, ans := range answers {
		v, present := ans.Data.Get("packet")
		r, cerr := wire.ReplyOf(v, present)
		if cerr != nil {
			a.log.Warn("redisadapter: skipping a malformed serverSideEmit answer", "error", cerr)
			continue
		}
		replies = append(replies, r)
		var ackErr *rally.AckError
		if failed == nil && errors.As(r.Err(), &ackErr) {
			failed = &rally.EventError{Event: event, Err: ackErr}
			if ackErr.Message == rally.ErrNoHandler.Error() {
				failed = &rally.EventError{Event: event, Err: rally.ErrNoHandler}
			}
		}
	}
	if err == nil {
		err = failed
	}
	return replies, err
}

func (a *Adapter) serverCount(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	n, err := a.t.ServerCount(ctx)
	if err != nil {
		return 0, fmt.Errorf("redisadapter: counting the servers of %q: %w", a.nsp, err)
	}
	return n, nil
}

// ServerCount returns how many servers serve the namespace, this one
// included.
func (a *Adapter) ServerCount(ctx context.Context) (int, error) { return a.serverCount(ctx) }

// request publishes a request and waits for want answers, until the
// timeout or ctx ends.
func (a *Adapter) request(ctx context.Context, op string, m *Message, id string, want int) ([]*Message, error) {
	p := &pending{answers: make(chan *Message, want)}
	if err := a.addPending(id, p); err != nil {
		return nil, err
	}
	defer a.removePending(id)
	if _, err := a.publish(ctx, m); err != nil {
		return nil, fmt.Errorf("redisadapter: %s: publishing the request: %w", op, err)
	}
	timer := time.NewTimer(a.timeout)
	defer timer.Stop()
	answers := make([]*Message, 0, want)
	for len(answers) < want {
		select {
		case ans := <-p.answers:
			answers = append(answers, ans)
		case <-timer.C:
			err := &wire.TimeoutError{Op: op, NSP: a.nsp, Got: len(answers), Want: want, After: a.timeout}
			a.local.Report(rally.AdapterEvent{Kind: rally.AdapterTimeout, Err: err})
			return answers, err
		case <-ctx.Done():
			return answers, fmt.Errorf("redisadapter: %s: %d of %d answers: %w", op, len(answers), want, ctx.Err())
		case <-a.ctx.Done():
			return answers, wire.ErrClosed
		}
	}
	return answers, nil
}

func (a *Adapter) addPending(id string, p *pending) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return wire.ErrClosed
	}
	a.pending[id] = p
	return nil
}

func (a *Adapter) removePending(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.pending, id)
}

// goTask runs fn on a goroutine that Close waits for, unless the adapter
// is closed.
func (a *Adapter) goTask(fn func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	a.tasks.Add(1)
	go func() {
		defer a.tasks.Done()
		fn()
	}()
}

// Close fails the pending requests and waits (for at most the timeout)
// for the responses being published and the server-side event being
// handled. The transport is the caller's to close.
func (a *Adapter) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	a.pending = make(map[string]*pending)
	a.mu.Unlock()
	a.cancel()
	finished := make(chan struct{})
	go func() {
		a.tasks.Wait()
		close(finished)
	}()
	timer := time.NewTimer(a.timeout)
	defer timer.Stop()
	select {
	case <-finished:
	case <-timer.C:
		a.log.Warn("redisadapter: closing without waiting longer for a server-side event handler")
	}
	return nil
}
