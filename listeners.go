package rally

import (
	"encoding/json"
	"fmt"
	"slices"

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

// OnAny adds a listener called with every event the socket receives, as
// it came: before packet middleware and the event's handler, as Node's
// socket.onAny. Listeners run in the order added; PrependAny adds one
// first.
func (s *Socket) OnAny(fn func(s *Socket, e *Event)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.anyListeners = append(s.anyListeners, fn)
}

// PrependAny adds a listener like OnAny, ahead of those already added.
func (s *Socket) PrependAny(fn func(s *Socket, e *Event)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.anyListeners = slices.Insert(s.anyListeners, 0, fn)
}

// OnAny adds a listener called with every event any socket of the
// namespace receives, before the sockets' own OnAny listeners.
func (n *Namespace) OnAny(fn func(s *Socket, e *Event)) {
	n.hmu.Lock()
	defer n.hmu.Unlock()
	n.anyListeners = append(n.anyListeners, fn)
}

// OnUnhandled registers the handler of the events no handler is registered
// for (by default they are dropped, unanswered, as the official server
// drops them). It can answer through ack.
func (n *Namespace) OnUnhandled(fn func(s *Socket, e *Event, ack Ack)) {
	n.hmu.Lock()
	defer n.hmu.Unlock()
	n.unhandled = fn
}

// OnAny adds a listener of every event of the main namespace. See
// Namespace.OnAny.
func (h *Hub) OnAny(fn func(s *Socket, e *Event)) { h.main.OnAny(fn) }

// OnUnhandled registers the handler of the main namespace's events that no
// handler takes. See Namespace.OnUnhandled.
func (h *Hub) OnUnhandled(fn func(s *Socket, e *Event, ack Ack)) { h.main.OnUnhandled(fn) }

// OnAnyOutgoing adds a listener called with every event sent to the
// socket, by Emit or by a broadcast that reaches it (Node's
// socket.onAnyOutgoing); acknowledgements are not events. A volatile
// broadcast that skipped the socket is not reported.
func (s *Socket) OnAnyOutgoing(fn func(s *Socket, e *Event)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.anyOutgoing = append(s.anyOutgoing, fn)
	s.hasOutgoing.Store(true)
}

// PrependAnyOutgoing adds a listener like OnAnyOutgoing, ahead of those
// already added.
func (s *Socket) PrependAnyOutgoing(fn func(s *Socket, e *Event)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.anyOutgoing = slices.Insert(s.anyOutgoing, 0, fn)
	s.hasOutgoing.Store(true)
}

// OnAnyOutgoing adds a listener of every event sent to any socket of the
// namespace, called before the sockets' own OnAnyOutgoing listeners.
func (n *Namespace) OnAnyOutgoing(fn func(s *Socket, e *Event)) {
	n.hmu.Lock()
	defer n.hmu.Unlock()
	n.anyOutgoing = append(n.anyOutgoing, fn)
	n.hasOutgoing.Store(true)
}

// OnAnyOutgoing adds a listener of every event sent to a socket of the
// main namespace. See Namespace.OnAnyOutgoing.
func (h *Hub) OnAnyOutgoing(fn func(s *Socket, e *Event)) { h.main.OnAnyOutgoing(fn) }

// listensOutgoing reports whether an OnAnyOutgoing listener concerns s.
func (s *Socket) listensOutgoing() bool {
	n := s.nsp
	return s.hasOutgoing.Load() || n.hasOutgoing.Load() || n.parent != nil && n.parent.hasOutgoing.Load()
}

// outgoingListeners returns the namespace's (a child's parent's first)
// and the socket's OnAnyOutgoing listeners.
func (s *Socket) outgoingListeners() []func(*Socket, *Event) {
	var fns []func(*Socket, *Event)
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
	for _, fn := range fns {
		e := &Event{Name: name, args: Reply{args: elems[1:], attachments: atts}}
		if err := protect(func() error { fn(s, e); return nil }); err != nil {
			s.nsp.hub.reportError(s, &EventError{Event: name, Err: fmt.Errorf("OnAnyOutgoing listener: %w", err)})
		}
	}
}

// listeners returns what an event goes through besides its handler; all
// nil for most sockets.
func (s *Socket) listeners() (mws []EventMiddleware, anys []func(*Socket, *Event), unhandled func(*Socket, *Event, Ack)) {
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
	mws []EventMiddleware, anys []func(*Socket, *Event)) ([]json.RawMessage, [][]byte, bool) {
	e := &Event{Name: event, args: Reply{args: args, attachments: p.Attachments}}
	for _, fn := range anys {
		seen := *e // a listener's changes are its own
		if err := protect(func() error { fn(s, &seen); return nil }); err != nil {
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
