package rally

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/rallyhq/rally/internal/parser"
)

// Event is an event a client sent: its name and its arguments as they came,
// JSON with placeholders where binary values are, and those values. It is
// what packet middleware, catch-all listeners and the fallback handler get.
type Event struct {
	// Name is the event's name.
	Name string
	args Reply
}

// Len returns the number of arguments.
func (e *Event) Len() int { return e.args.Len() }

// Decode decodes the arguments, in order, into the values dst points to,
// as Reply.Decode does.
func (e *Event) Decode(dst ...any) error { return e.args.Decode(dst...) }

// Values decodes every argument into a Go value, as Reply.Values does.
func (e *Event) Values() []any { return e.args.Values() }

// Raw returns the JSON text of argument i, with placeholders where binary
// values are.
func (e *Event) Raw(i int) json.RawMessage { return e.args.Raw(i) }

// Attachments returns the binary values the placeholders refer to.
func (e *Event) Attachments() [][]byte { return e.args.Attachments() }

// SetArgs replaces the arguments with args, encoded as Emit encodes them:
// what packet middleware does to rewrite an event before its handler gets
// it.
func (e *Event) SetArgs(args ...any) error {
	r, err := ReplyOf(args...)
	if err != nil {
		return fmt.Errorf("rally: rewriting event %q: %w", e.Name, err)
	}
	e.args = r
	return nil
}

// EventMiddleware vets an event before it is handled (Node's socket.use):
// it may read and rewrite the event (SetArgs). An error drops the event,
// unanswered, and goes to Options.OnError, as the official server emits
// it on the socket.
type EventMiddleware func(s *Socket, e *Event) error

// Use adds packet middleware to the socket: each incoming event goes
// through them, in the order added, after its OnAny listeners and before
// its handler, as with the official server.
func (s *Socket) Use(mw EventMiddleware) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eventMiddleware = append(s.eventMiddleware, mw)
}

// catchAll is one registration of a catch-all listener. Its address tells
// it from other registrations of the same func: the func OnAny returns
// removes this one and no other.
type catchAll struct{ fn func(*Socket, *Event) }

// catchAlls is a list of catch-all listeners. A list, once stored, is
// never changed in place but replaced, so that an event goes through the
// listeners there were when its dispatch began, as Node copies its list
// before calling them: one removed meanwhile still gets the event, one
// added meanwhile does not.
type catchAlls []*catchAll

// with returns the list with c added, first or last.
func (l catchAlls) with(c *catchAll, first bool) catchAlls {
	out := make(catchAlls, 0, len(l)+1)
	if first {
		out = append(out, c)
	}
	out = append(out, l...)
	if !first {
		out = append(out, c)
	}
	return out
}

// without returns the list with c taken out, nil if none is left.
func (l catchAlls) without(c *catchAll) catchAlls {
	i := slices.Index(l, c)
	switch {
	case i < 0:
		return l
	case len(l) == 1:
		return nil
	}
	return slices.Delete(slices.Clone(l), i, i+1)
}

// catchAllList is where a socket or a namespace keeps one kind of
// catch-all listeners: the list, the lock that guards it, and, for the
// outgoing ones, the flag that tells broadcasts whether it is empty.
type catchAllList struct {
	mu       sync.Locker
	list     *catchAlls
	nonEmpty *atomic.Bool // nil for the incoming listeners
}

// add registers fn, first or last, and returns the func that removes this
// registration.
func (c catchAllList) add(fn func(*Socket, *Event), first bool) (remove func()) {
	r := &catchAll{fn: fn}
	c.update(func(l catchAlls) catchAlls { return l.with(r, first) })
	return func() { c.update(func(l catchAlls) catchAlls { return l.without(r) }) }
}

// clear removes every listener.
func (c catchAllList) clear() { c.update(func(catchAlls) catchAlls { return nil }) }

// update replaces the list with what change makes of it.
func (c catchAllList) update(change func(catchAlls) catchAlls) {
	c.mu.Lock()
	defer c.mu.Unlock()
	*c.list = change(*c.list)
	if c.nonEmpty != nil {
		c.nonEmpty.Store(len(*c.list) > 0)
	}
}

// funcs returns the listeners' funcs, in the order they are called.
func (c catchAllList) funcs() []func(*Socket, *Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fns := make([]func(*Socket, *Event), len(*c.list))
	for i, r := range *c.list {
		fns[i] = r.fn
	}
	return fns
}

func (s *Socket) incoming() catchAllList { return catchAllList{mu: &s.mu, list: &s.anyListeners} }

func (s *Socket) outgoing() catchAllList {
	return catchAllList{mu: &s.mu, list: &s.anyOutgoing, nonEmpty: &s.hasOutgoing}
}

func (n *Namespace) incoming() catchAllList { return catchAllList{mu: &n.hmu, list: &n.anyListeners} }

func (n *Namespace) outgoing() catchAllList {
	return catchAllList{mu: &n.hmu, list: &n.anyOutgoing, nonEmpty: &n.hasOutgoing}
}

// OnAny adds a listener called with every event the socket receives, as
// it came: before packet middleware and the event's handler, as Node's
// socket.onAny. Listeners run in the order added; PrependAny adds one
// first. The func returned removes this registration (Node's
// socket.offAny(listener)); it can be called more than once, from any
// goroutine, the listener itself included. An event being dispatched when
// a listener is added or removed goes through the listeners there were
// when its dispatch began, as with Node.
func (s *Socket) OnAny(fn func(s *Socket, e *Event)) (remove func()) {
	return s.incoming().add(fn, false)
}

// PrependAny adds a listener like OnAny, ahead of those already added
// (Node's socket.prependAny). The func returned removes it.
func (s *Socket) PrependAny(fn func(s *Socket, e *Event)) (remove func()) {
	return s.incoming().add(fn, true)
}

// OffAny removes every listener added to the socket with OnAny and
// PrependAny (Node's socket.offAny()); the namespace's stay.
func (s *Socket) OffAny() { s.incoming().clear() }

// ListenersAny returns the socket's OnAny listeners, in the order they are
// called (Node's socket.listenersAny()); the namespace's are not among
// them. The slice is the caller's.
func (s *Socket) ListenersAny() []func(s *Socket, e *Event) { return s.incoming().funcs() }

// OnAny adds a listener called with every event any socket of the
// namespace receives, before the sockets' own OnAny listeners. The func
// returned removes it, as Socket.OnAny's does.
func (n *Namespace) OnAny(fn func(s *Socket, e *Event)) (remove func()) {
	return n.incoming().add(fn, false)
}

// OffAny removes every listener added with the namespace's OnAny; those of
// the sockets stay. See Socket.OffAny.
func (n *Namespace) OffAny() { n.incoming().clear() }

// ListenersAny returns the listeners added with the namespace's OnAny, in
// the order they are called. See Socket.ListenersAny.
func (n *Namespace) ListenersAny() []func(s *Socket, e *Event) { return n.incoming().funcs() }

// OnUnhandled registers the handler of the events no handler is registered
// for (by default they are dropped, unanswered, as the official server
// drops them). It can answer through ack.
func (n *Namespace) OnUnhandled(fn func(s *Socket, e *Event, ack Ack)) {
	n.hmu.Lock()
	defer n.hmu.Unlock()
	n.unhandled = fn
}

// OnAny adds a listener of every event of the main namespace and returns
// the func that removes it. See Namespace.OnAny.
func (h *Hub) OnAny(fn func(s *Socket, e *Event)) (remove func()) { return h.main.OnAny(fn) }

// OffAny removes the main namespace's OnAny listeners. See
// Namespace.OffAny.
func (h *Hub) OffAny() { h.main.OffAny() }

// ListenersAny returns the main namespace's OnAny listeners. See
// Namespace.ListenersAny.
func (h *Hub) ListenersAny() []func(s *Socket, e *Event) { return h.main.ListenersAny() }

// OnUnhandled registers the handler of the main namespace's events that no
// handler takes. See Namespace.OnUnhandled.
func (h *Hub) OnUnhandled(fn func(s *Socket, e *Event, ack Ack)) { h.main.OnUnhandled(fn) }

// OnAnyOutgoing adds a listener called with every event sent to the
// socket, by Emit or by a broadcast that reaches it (Node's
// socket.onAnyOutgoing); acknowledgements are not events. A volatile
// broadcast that skipped the socket is not reported. The func returned
// removes this registration (Node's socket.offAnyOutgoing(listener)), as
// OnAny's does.
func (s *Socket) OnAnyOutgoing(fn func(s *Socket, e *Event)) (remove func()) {
	return s.outgoing().add(fn, false)
}

// PrependAnyOutgoing adds a listener like OnAnyOutgoing, ahead of those
// already added (Node's socket.prependAnyOutgoing). The func returned
// removes it.
func (s *Socket) PrependAnyOutgoing(fn func(s *Socket, e *Event)) (remove func()) {
	return s.outgoing().add(fn, true)
}

// OffAnyOutgoing removes every listener added to the socket with
// OnAnyOutgoing and PrependAnyOutgoing (Node's socket.offAnyOutgoing());
// the namespace's stay.
func (s *Socket) OffAnyOutgoing() { s.outgoing().clear() }

// ListenersAnyOutgoing returns the socket's OnAnyOutgoing listeners, in
// the order they are called (Node's socket.listenersAnyOutgoing()); the
// namespace's are not among them. The slice is the caller's.
func (s *Socket) ListenersAnyOutgoing() []func(s *Socket, e *Event) { return s.outgoing().funcs() }

// OnAnyOutgoing adds a listener of every event sent to any socket of the
// namespace, called before the sockets' own OnAnyOutgoing listeners. The
// func returned removes it, as Socket.OnAnyOutgoing's does.
func (n *Namespace) OnAnyOutgoing(fn func(s *Socket, e *Event)) (remove func()) {
	return n.outgoing().add(fn, false)
}

// OffAnyOutgoing removes every listener added with the namespace's
// OnAnyOutgoing; those of the sockets stay. See Socket.OffAnyOutgoing.
func (n *Namespace) OffAnyOutgoing() { n.outgoing().clear() }

// ListenersAnyOutgoing returns the listeners added with the namespace's
// OnAnyOutgoing, in the order they are called. See
// Socket.ListenersAnyOutgoing.
func (n *Namespace) ListenersAnyOutgoing() []func(s *Socket, e *Event) { return n.outgoing().funcs() }

// OnAnyOutgoing adds a listener of every event sent to a socket of the
// main namespace and returns the func that removes it. See
// Namespace.OnAnyOutgoing.
func (h *Hub) OnAnyOutgoing(fn func(s *Socket, e *Event)) (remove func()) {
	return h.main.OnAnyOutgoing(fn)
}

// OffAnyOutgoing removes the main namespace's OnAnyOutgoing listeners. See
// Namespace.OffAnyOutgoing.
func (h *Hub) OffAnyOutgoing() { h.main.OffAnyOutgoing() }

// ListenersAnyOutgoing returns the main namespace's OnAnyOutgoing
// listeners. See Namespace.ListenersAnyOutgoing.
func (h *Hub) ListenersAnyOutgoing() []func(s *Socket, e *Event) {
	return h.main.ListenersAnyOutgoing()
}

// listensOutgoing reports whether an OnAnyOutgoing listener concerns s.
func (s *Socket) listensOutgoing() bool {
	n := s.nsp
	return s.hasOutgoing.Load() || n.hasOutgoing.Load() || n.parent != nil && n.parent.hasOutgoing.Load()
}

// outgoingListeners returns the namespace's (a child's parent's first)
// and the socket's OnAnyOutgoing listeners.
func (s *Socket) outgoingListeners() catchAlls {
	var fns catchAlls
	for _, n := range []*Namespace{s.nsp.parent, s.nsp} {
		if n != nil {
			n.hmu.RLock()
			fns = append(fns, n.anyOutgoing...)
			n.hmu.RUnlock()
		}
	}
	s.mu.Lock()
	fns = append(fns, s.anyOutgoing...)
	s.mu.Unlock()
	return fns
}

// notifyOutgoing calls the OnAnyOutgoing listeners with an event sent, as
// its [name, args...] payload and attachments.
func (s *Socket) notifyOutgoing(data json.RawMessage, atts [][]byte) {
	if !s.listensOutgoing() {
		return
	}
	fns := s.outgoingListeners()
	elems, err := parser.SplitArray(data)
	if err != nil || len(elems) == 0 {
		return
	}
	name, _ := parser.EventName(data)
	for _, r := range fns {
		e := &Event{Name: name, args: Reply{args: elems[1:], attachments: atts}}
		if err := protect(func() error { r.fn(s, e); return nil }); err != nil {
			s.nsp.hub.reportError(s, &EventError{Event: name, Err: fmt.Errorf("OnAnyOutgoing listener: %w", err)})
		}
	}
}

// listeners returns what an event goes through besides its handler; all
// nil for most sockets.
func (s *Socket) listeners() (mws []EventMiddleware, anys catchAlls, unhandled func(*Socket, *Event, Ack)) {
	anys, unhandled = s.nsp.listeners()
	s.mu.Lock()
	mws = s.eventMiddleware
	if len(s.anyListeners) > 0 {
		anys = append(slices.Clip(anys), s.anyListeners...)
	}
	s.mu.Unlock()
	return mws, anys, unhandled
}

// throughListeners runs an event through the socket's catch-all
// listeners, then its middleware, as the official server does. It returns
// the event's arguments and attachments as the handler is to get them, and
// false when middleware dropped it.
func (s *Socket) throughListeners(event string, args []json.RawMessage, p *parser.Packet,
	mws []EventMiddleware, anys catchAlls) ([]json.RawMessage, [][]byte, bool) {
	e := &Event{Name: event, args: Reply{args: args, attachments: p.Attachments}}
	for _, r := range anys {
		seen := *e // a listener's changes are its own
		if err := protect(func() error { r.fn(s, &seen); return nil }); err != nil {
			s.nsp.hub.reportError(s, &EventError{Event: event, Err: fmt.Errorf("OnAny listener: %w", err)})
		}
	}
	for _, mw := range mws {
		err := protect(func() error { return mw(s, e) })
		if err != nil {
			s.nsp.hub.reportError(s, &EventError{Event: event, Err: fmt.Errorf("refused by middleware: %w", err)})
			return nil, nil, false
		}
	}
	return e.args.args, e.args.attachments, true
}
