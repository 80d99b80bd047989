package rally

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/rallyhq/rally/internal/callback"
)

// ConnectMiddleware runs when a client asks to join a namespace, before
// the socket connects. It can read the handshake (s.Handshake().Auth holds
// the client's auth payload) and the request context (s.Context()), and
// store data on the socket. Returning an error refuses the connection: the
// client's connect_error event gets the error's message, and a
// *ConnectError's Data as well.
type ConnectMiddleware func(s *Socket) error

// ConnectError refuses a connection from connect middleware with a message
// and data for the client (err.message and err.data in the client's
// connect_error handler).
type ConnectError struct {
	Message string
	Data    any
}

func (e *ConnectError) Error() string { return e.Message }

// Namespace is a communication channel clients join by name ("/",
// "/admin"); each has its own handlers, middleware, sockets and rooms.
type Namespace struct {
	hub     *Hub
	name    string
	ackIDs  atomic.Int64
	local   *LocalAdapter
	adapter Adapter

	hmu          sync.RWMutex
	handlers     map[string]*callback.Func
	serverEvents map[string]*callback.Func
	middleware   []ConnectMiddleware
	onConnect    []func(*Socket)
	onDisconnect []func(*Socket, string)
	anyListeners catchAlls
	unhandled    func(*Socket, *Event, Ack)
	anyOutgoing  catchAlls
	hasOutgoing  atomic.Bool // anyOutgoing is not empty

	// A parent namespace (OfMatch) has match and children, under the
	// hub's lock; its children point back to it.
	match    func(name string, auth json.RawMessage) bool
	children map[string]*Namespace
	parent   *Namespace
	removed  bool // Close or the cleanup took it out of the hub; under mu and the hub's lock

	mu      sync.RWMutex
	sockets map[string]*Socket
	rooms   map[string]map[*Socket]struct{}
	byPID   map[string]*Socket // sockets by private session id, with recovery, until persisted
}

func newNamespace(h *Hub, name string) *Namespace {
	n := &Namespace{
		hub:          h,
		name:         name,
		handlers:     make(map[string]*callback.Func),
		serverEvents: make(map[string]*callback.Func),
		sockets:      make(map[string]*Socket),
		rooms:        make(map[string]map[*Socket]struct{}),
	}
	n.local = &LocalAdapter{nsp: n}
	switch {
	case h.opts.Adapter != nil:
		n.adapter = h.opts.Adapter(n.local)
	case h.recovery != nil:
		n.adapter = newMemoryAdapter(n.local, h.recovery)
	default:
		n.adapter = n.local
	}
	return n
}

// Adapter returns the namespace's adapter (its LocalAdapter unless
// Options.Adapter says otherwise).
func (n *Namespace) Adapter() Adapter { return n.adapter }

// Name returns the namespace's name, such as "/" or "/admin".
func (n *Namespace) Name() string { return n.name }

// On registers the handler of an event. The handler is a function whose
// first parameter is the *Socket the event came from; the event's
// arguments are decoded, in order, into its other parameters: JSON into
// any Go type encoding/json decodes (string, float64, int, structs, maps,
// json.RawMessage, any), binary attachments into []byte (at any depth). A
// final variadic parameter collects the remaining arguments; ...any takes
// every argument as sent, binary included, ready to be emitted again.
// Missing arguments leave zero values.
//
// The results are the acknowledgement when the client asked for one. A
// last result of type error is not sent: when it is non-nil the client
// gets an error ack ({"error": message}) instead. Errors, decoding
// failures and panics also go to Options.OnError. A handler that takes an
// Ack as its last parameter (before a variadic one) answers through it
// instead: with any number of arguments, later, or not at all; it knows
// whether the client asked for an answer (Ack.Requested).
//
//	hub.On("salutations", func(s *rally.Socket, text string, who map[string]string, data []byte) {})
//	hub.On("sum", func(s *rally.Socket, a, b int) (int, error) { return a + b, nil })
//	hub.On("relay", func(s *rally.Socket, args ...any) { s.Broadcast().Emit("relay", args...) })
//	hub.On("echo", func(s *rally.Socket, ack rally.Ack, args ...any) { ack.Send(args...) })
//
// A handler with an unusable signature, an empty event name or a reserved
// one ("connect", "disconnect", ...) makes On panic at registration. An
// event no handler takes is dropped, unanswered, as the official server
// does. Handlers of one socket run one at a time, in the order the events
// arrived, on a goroutine of their own; a slow handler delays only its
// socket. A handler that must wait for something before it answers
// returns at once and sends its Ack from a goroutine of its own: the
// socket's next events do not wait for it.
func (n *Namespace) On(event string, handler any) {
	f := mustHandler(event, handler)
	n.hmu.Lock()
	defer n.hmu.Unlock()
	n.handlers[event] = f
}

// Off removes the namespace's handler of event, registered with On: the
// sockets without a handler of their own then leave the event to
// OnUnhandled or drop it (see Socket.Off, for Node's socket.off). Off on
// a child namespace (OfMatch) removes the child's own handler, and the
// parent's, if it has one, then takes the event.
func (n *Namespace) Off(event string) {
	n.hmu.Lock()
	defer n.hmu.Unlock()
	delete(n.handlers, event)
}

// Use adds connect middleware; each runs in the order added.
func (n *Namespace) Use(mw ConnectMiddleware) {
	n.hmu.Lock()
	defer n.hmu.Unlock()
	n.middleware = append(n.middleware, mw)
}

// OnConnect registers a function called for each socket that connects, on
// the socket's goroutine, before its events are dispatched. Anything it
// emits reaches the client after the connection is confirmed.
func (n *Namespace) OnConnect(fn func(s *Socket)) {
	n.hmu.Lock()
	defer n.hmu.Unlock()
	n.onConnect = append(n.onConnect, fn)
}

// OnDisconnect registers a function called when a socket disconnects, with
// the reason (one of the Reason constants). It runs on the socket's
// goroutine after the handler running at the disconnect, if any. Events
// still waiting are dropped, unless the client itself disconnected the
// socket: the events it sent before are handled first. Nothing of the
// socket runs after its OnDisconnect handlers. The socket no longer receives anything but is
// still in its rooms, so s.Rooms() lists them and s.To(room) reaches the
// others. s.Context() is already canceled; use
// context.WithoutCancel(s.Context()) for work that needs its values.
func (n *Namespace) OnDisconnect(fn func(s *Socket, reason string)) {
	n.hmu.Lock()
	defer n.hmu.Unlock()
	n.onDisconnect = append(n.onDisconnect, fn)
}

// OnServerEvent registers the handler of an event that other servers send
// with ServerSideEmit (through an adapter that spans servers). The handler
// takes the event's arguments, decoded as for On, without a *Socket; its
// results answer a ServerSideEmitWithAck. It panics if the handler is
// unusable.
func (n *Namespace) OnServerEvent(event string, handler any) {
	f := mustServerHandler(event, handler)
	n.hmu.Lock()
	defer n.hmu.Unlock()
	n.serverEvents[event] = f
}

func (n *Namespace) serverHandler(event string) *callback.Func {
	n.hmu.RLock()
	defer n.hmu.RUnlock()
	return n.serverEvents[event]
}

// ServerSideEmit sends an event to the other servers of the namespace
// (their OnServerEvent handlers), not to clients and not to this server.
// With a single server it does nothing.
func (n *Namespace) ServerSideEmit(ctx context.Context, event string, args ...any) error {
	p, err := NewPacket(event, args...)
	if err != nil {
		return err
	}
	_, err = n.adapter.ServerSideEmit(ctx, p, false)
	return err
}

// ServerSideEmitWithAck sends an event to the other servers and waits for
// each one's answer (the results of its handler) until ctx ends.
func (n *Namespace) ServerSideEmitWithAck(ctx context.Context, event string, args ...any) ([]Reply, error) {
	p, err := NewPacket(event, args...)
	if err != nil {
		return nil, err
	}
	return n.adapter.ServerSideEmit(ctx, p, true)
}

// The getters below give a child namespace its parent's registrations
// first, then its own.

func (n *Namespace) handler(event string) *callback.Func {
	n.hmu.RLock()
	f := n.handlers[event]
	n.hmu.RUnlock()
	if f == nil && n.parent != nil {
		return n.parent.handler(event)
	}
	return f
}

func (n *Namespace) connectMiddleware() []ConnectMiddleware {
	n.hmu.RLock()
	defer n.hmu.RUnlock()
	return withParent(n, n.middleware, (*Namespace).connectMiddleware)
}

func (n *Namespace) connectHandlers() []func(*Socket) {
	n.hmu.RLock()
	defer n.hmu.RUnlock()
	return withParent(n, n.onConnect, (*Namespace).connectHandlers)
}

func (n *Namespace) disconnectHandlers() []func(*Socket, string) {
	n.hmu.RLock()
	defer n.hmu.RUnlock()
	return withParent(n, n.onDisconnect, (*Namespace).disconnectHandlers)
}

// listeners returns the catch-all listeners and the fallback handler.
func (n *Namespace) listeners() (catchAlls, func(*Socket, *Event, Ack)) {
	n.hmu.RLock()
	anys, unhandled := n.anyListeners, n.unhandled
	n.hmu.RUnlock()
	if n.parent == nil {
		return anys, unhandled
	}
	panys, punhandled := n.parent.listeners()
	if unhandled == nil {
		unhandled = punhandled
	}
	return append(slices.Clip(panys), anys...), unhandled
}

// withParent puts the parent's registrations of a child ahead of its own.
func withParent[T any](n *Namespace, own []T, get func(*Namespace) []T) []T {
	if n.parent == nil {
		return own
	}
	return append(slices.Clip(get(n.parent)), own...)
}

func (n *Namespace) nextAckID() int64 { return n.ackIDs.Add(1) - 1 }

// Emit sends an event to every socket of the namespace.
func (n *Namespace) Emit(event string, args ...any) error { return n.All().Emit(event, args...) }

// EmitWithAck sends an event to every socket of the namespace and collects
// their acknowledgements. See Broadcast.EmitWithAck.
func (n *Namespace) EmitWithAck(ctx context.Context, event string, args ...any) ([]Reply, error) {
	return n.All().EmitWithAck(ctx, event, args...)
}

// Send emits the "message" event to every socket of the namespace.
func (n *Namespace) Send(args ...any) error { return n.All().Send(args...) }

// All selects every socket of the namespace.
func (n *Namespace) All() Broadcast { return Broadcast{nsp: n} }

// To selects the sockets in any of the rooms; each gets a packet once.
func (n *Namespace) To(rooms ...string) Broadcast { return n.All().To(rooms...) }

// In is the same as To.
func (n *Namespace) In(rooms ...string) Broadcast { return n.All().To(rooms...) }

// Except selects the sockets in none of the rooms.
func (n *Namespace) Except(rooms ...string) Broadcast { return n.All().Except(rooms...) }

// Socket returns the connected socket with the given id on this server, or
// nil.
func (n *Namespace) Socket(id string) *Socket {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.sockets[id]
}

// connect marks a socket connected and puts it in the room of its id and
// in rooms. It reports false if the socket was closed meanwhile.
func (n *Namespace) connect(s *Socket, rooms []string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if socketState(s.state.Load()) != stateConnecting || n.removed {
		return false
	}
	s.state.Store(int32(stateConnected))
	n.sockets[s.id] = s
	if s.pid != "" {
		if n.byPID == nil {
			n.byPID = make(map[string]*Socket)
		}
		n.byPID[s.pid] = s
	}
	n.joinLocked(s, s.id)
	for _, room := range rooms {
		n.joinLocked(s, room)
	}
	return true
}

// socketByPID returns the socket whose private session id is pid, if it
// is connected or its session is being kept, or nil.
func (n *Namespace) socketByPID(pid string) *Socket {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.byPID[pid]
}

// forgetPID removes a socket whose session was kept, or that had none to
// keep, from byPID.
func (n *Namespace) forgetPID(s *Socket) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.byPID[s.pid] == s {
		delete(n.byPID, s.pid)
	}
}

// disconnect marks a socket closed and stops broadcasts from reaching it;
// it stays in its rooms until abandon. ok is false if it was closed
// already.
func (n *Namespace) disconnect(s *Socket) (wasConnected, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch socketState(s.state.Load()) {
	case stateClosed:
		return false, false
	case stateConnected:
		wasConnected = true
		delete(n.sockets, s.id) // it stays in byPID until its session is kept
	}
	s.state.Store(int32(stateClosed))
	return wasConnected, true
}

// abandon removes a closed socket from all its rooms.
func (n *Namespace) abandon(s *Socket) {
	observed := len(n.hub.observers()) > 0
	var left []string
	n.mu.Lock()
	for room := range s.rooms {
		if observed {
			left = append(left, room)
		}
		n.leaveLocked(s, room)
	}
	s.abandoned = true
	n.mu.Unlock()
	if observed {
		slices.Sort(left)
		n.hub.noteRooms(s, left, false)
	}
}

func (n *Namespace) join(s *Socket, rooms []string) {
	observed := len(n.hub.observers()) > 0
	var joined []string
	n.mu.Lock()
	if s.abandoned {
		n.mu.Unlock()
		return
	}
	for _, room := range rooms {
		if _, in := s.rooms[room]; observed && !in {
			joined = append(joined, room)
		}
		n.joinLocked(s, room)
	}
	n.mu.Unlock()
	if observed {
		n.hub.noteRooms(s, joined, true)
	}
}

func (n *Namespace) joinLocked(s *Socket, room string) {
	members := n.rooms[room]
	if members == nil {
		members = make(map[*Socket]struct{})
		n.rooms[room] = members
	}
	members[s] = struct{}{}
	s.rooms[room] = struct{}{}
}

func (n *Namespace) leave(s *Socket, rooms []string) {
	observed := len(n.hub.observers()) > 0
	var left []string
	n.mu.Lock()
	for _, room := range rooms {
		if _, in := s.rooms[room]; observed && in {
			left = append(left, room)
		}
		n.leaveLocked(s, room)
	}
	n.mu.Unlock()
	if observed {
		n.hub.noteRooms(s, left, false)
	}
}

func (n *Namespace) leaveLocked(s *Socket, room string) {
	delete(s.rooms, room)
	members := n.rooms[room]
	if members == nil {
		return
	}
	delete(members, s)
	if len(members) == 0 {
		delete(n.rooms, room)
	}
}

func (n *Namespace) socketRooms(s *Socket) []string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return slices.Sorted(maps.Keys(s.rooms))
}

// selected returns the connected sockets of this server that opts selects.
func (n *Namespace) selected(opts BroadcastOptions) []*Socket {
	var out []*Socket
	n.each(opts, func(s *Socket) { out = append(out, s) })
	return out
}

// each calls fn for every connected socket of this server that opts
// selects, once each, while the namespace is read-locked: fn must not join,
// leave or disconnect.
func (n *Namespace) each(opts BroadcastOptions, fn func(*Socket)) {
	n.mu.RLock()
	defer n.mu.RUnlock()

	var except map[*Socket]struct{}
	if len(opts.Except) > 0 {
		except = make(map[*Socket]struct{})
		for _, room := range opts.Except {
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
	switch len(opts.Rooms) {
	case 0:
		for _, s := range n.sockets {
			visit(s)
		}
	case 1:
		for s := range n.rooms[opts.Rooms[0]] {
			visit(s)
		}
	default:
		seen := make(map[*Socket]struct{})
		for _, room := range opts.Rooms {
			for s := range n.rooms[room] {
				if _, dup := seen[s]; !dup {
					seen[s] = struct{}{}
					visit(s)
				}
			}
		}
	}
}
