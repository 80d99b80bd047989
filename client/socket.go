package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/internal/callback"
	"github.com/rallyhq/rally/internal/parser"
	"github.com/rallyhq/rally/internal/serial"
)

// Socket is a connection to one namespace of a server. It is safe for
// concurrent use.
type Socket struct {
	m    *Manager
	nsp  string
	auth any
	err  error // from New

	mu           sync.Mutex
	id           string
	state        int // idle, connecting, connected, closed
	result       chan error
	handlers     map[string]*callback.Func
	onAny        []func(event string, args rally.Reply)
	onDisconnect []func(reason string)
	acks         map[int64]chan rally.Reply
	nextAck      int64
	reason       string
	done         chan struct{}

	queue serial.Queue // handlers and OnDisconnect functions, in order
}

const (
	stateIdle = iota
	stateConnecting
	stateConnected
	stateClosed
)

// ID returns the socket id the server assigned, or "" before Connect.
func (s *Socket) ID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// Namespace returns the socket's namespace.
func (s *Socket) Namespace() string { return s.nsp }

// Manager returns the connection the socket uses; other namespaces can be
// joined over it with Manager.Socket.
func (s *Socket) Manager() *Manager { return s.m }

// Transport returns the name of the connection's current transport.
func (s *Socket) Transport() string { return s.m.Transport() }

// Connected reports whether the socket is connected.
func (s *Socket) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == stateConnected
}

// On registers the handler of an event. Its parameters are decoded from
// the event's arguments (JSON into Go values, binary into []byte); its
// results, a last error excepted, are the acknowledgement when the server
// asked for one ({"error": message} when the error is not nil); a handler
// that takes an Ack as its last parameter answers through it instead.
// Handlers run one at a time, in the order events arrive. On panics if
// handler is not a usable function.
func (s *Socket) On(event string, handler any) {
	f, err := callback.NewSpec(fmt.Sprintf("rally/client: On(%q)", event), handler, callback.Spec{Ack: ackType})
	if err != nil {
		panic(err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.handlers == nil {
		s.handlers = make(map[string]*callback.Func)
	}
	s.handlers[event] = f
}

// OnAny registers a function called with every event the socket receives,
// before the event's own handler.
func (s *Socket) OnAny(fn func(event string, args rally.Reply)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onAny = append(s.onAny, fn)
}

// OnDisconnect registers a function called once the socket disconnects,
// with the reason: ReasonServerDisconnect, ReasonClientDisconnect or the
// connection's close reason.
func (s *Socket) OnDisconnect(fn func(reason string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onDisconnect = append(s.onDisconnect, fn)
}

// Done returns a channel closed when the socket has disconnected, after
// its OnDisconnect functions ran.
func (s *Socket) Done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		s.done = make(chan struct{})
	}
	return s.done
}

// Reason returns why the socket disconnected, or "" while it has not.
func (s *Socket) Reason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

// Connect opens the connection if needed and joins the namespace. It
// returns a *rally.ConnectError when the server refuses (Data holds the
// refusal's data as JSON), or ctx's error.
func (s *Socket) Connect(ctx context.Context) error {
	if s.err != nil {
		return s.err
	}
	s.mu.Lock()
	if s.state != stateIdle {
		s.mu.Unlock()
		return errors.New("rally/client: Connect called twice")
	}
	s.state = stateConnecting
	s.result = make(chan error, 1)
	s.mu.Unlock()

	if _, err := s.m.open(ctx); err != nil {
		s.fail()
		return err
	}
	s.m.mu.Lock()
	if s.m.socks[s.nsp] != nil {
		s.m.mu.Unlock()
		s.fail()
		return fmt.Errorf("rally/client: namespace %s already connected on this connection", s.nsp)
	}
	s.m.socks[s.nsp] = s
	s.m.mu.Unlock()

	p := &parser.Packet{Type: parser.Connect, Namespace: s.nsp, ID: parser.NoID}
	if s.auth != nil {
		data, err := json.Marshal(s.auth)
		if err != nil {
			s.m.release(s, true)
			s.fail()
			return fmt.Errorf("rally/client: encoding auth: %w", err)
		}
		p.Data = data
	}
	if err := s.m.send(p); err != nil {
		s.m.release(s, true)
		s.fail()
		return err
	}
	select {
	case err := <-s.result:
		if err != nil {
			s.m.release(s, true)
		}
		return err
	case <-ctx.Done():
		s.m.release(s, true)
		s.fail()
		return ctx.Err()
	}
}

func (s *Socket) fail() {
	s.mu.Lock()
	s.state = stateClosed
	s.mu.Unlock()
}

// connected ends Connect with err (nil when the server accepted).
func (s *Socket) connected(err error) {
	s.mu.Lock()
	if s.state != stateConnecting {
		s.mu.Unlock()
		return
	}
	if err == nil {
		s.state = stateConnected
	} else {
		s.state = stateClosed
	}
	ch := s.result
	s.mu.Unlock()
	ch <- err
}

// Emit sends an event to the server; []byte values anywhere in args travel
// as binary attachments.
func (s *Socket) Emit(event string, args ...any) error {
	p, err := s.eventPacket(event, args, parser.NoID)
	if err != nil {
		return err
	}
	if !s.Connected() {
		return errNotConnected
	}
	return s.m.send(p)
}

// Send emits the "message" event.
func (s *Socket) Send(args ...any) error { return s.Emit("message", args...) }

// EmitWithAck sends an event and waits for the server's acknowledgement
// until ctx ends or the socket disconnects. An error ack ({"error": ...})
// is returned as the reply with a *rally.AckError.
func (s *Socket) EmitWithAck(ctx context.Context, event string, args ...any) (rally.Reply, error) {
	s.mu.Lock()
	if s.state != stateConnected {
		s.mu.Unlock()
		return rally.Reply{}, errNotConnected
	}
	id := s.nextAck
	s.nextAck++
	ch := make(chan rally.Reply, 1)
	if s.acks == nil {
		s.acks = make(map[int64]chan rally.Reply)
	}
	s.acks[id] = ch
	if s.done == nil {
		s.done = make(chan struct{})
	}
	done := s.done
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.acks, id)
		s.mu.Unlock()
	}()

	p, err := s.eventPacket(event, args, id)
	if err != nil {
		return rally.Reply{}, err
	}
	if err := s.m.send(p); err != nil {
		return rally.Reply{}, err
	}
	select {
	case r := <-ch:
		return r, r.Err()
	case <-ctx.Done():
		return rally.Reply{}, fmt.Errorf("rally/client: waiting for the ack of %q: %w", event, ctx.Err())
	case <-done:
		return rally.Reply{}, errNotConnected
	}
}

func (s *Socket) eventPacket(event string, args []any, id int64) (*parser.Packet, error) {
	p, err := rally.NewPacket(event, args...)
	if err != nil {
		return nil, err
	}
	typ := parser.Event
	if len(p.Attachments) > 0 {
		typ = parser.BinaryEvent
	}
	return &parser.Packet{Type: typ, Namespace: s.nsp, ID: id, Data: p.Data, Attachments: p.Attachments}, nil
}

func (s *Socket) resolveAck(p *parser.Packet) {
	s.mu.Lock()
	ch := s.acks[p.ID]
	delete(s.acks, p.ID)
	s.mu.Unlock()
	if ch != nil {
		args, _ := parser.SplitArray(p.Data)
		ch <- rally.NewReply(args, p.Attachments)
	}
}

// dispatch runs the handlers of an event and answers its ack.
func (s *Socket) dispatch(p *parser.Packet) {
	elems, _ := parser.SplitArray(p.Data)
	if len(elems) == 0 {
		return
	}
	event, _ := parser.EventName(p.Data)
	args := rally.NewReply(elems[1:], p.Attachments)
	s.mu.Lock()
	anys := s.onAny
	f := s.handlers[event]
	s.mu.Unlock()
	for _, fn := range anys {
		fn(event, args)
	}
	if f == nil {
		return
	}
	if f.TakesAck() {
		var ack Ack
		if p.ID != parser.NoID {
			ack.st = &ackState{s: s, id: p.ID}
		}
		if _, err := f.Call(nil, elems[1:], p.Attachments, reflect.ValueOf(ack)); err != nil && ack.st != nil {
			ack.st.sendError(err)
		}
		return
	}
	results, err := f.Call(nil, elems[1:], p.Attachments, reflect.Value{})
	if p.ID == parser.NoID {
		return
	}
	var data json.RawMessage
	var atts [][]byte
	if err == nil {
		data, atts, err = parser.MarshalAck(results)
	}
	if err != nil {
		data, _ = json.Marshal([]rally.AckError{{Message: err.Error()}})
		atts = nil
	}
	s.sendAck(p.ID, data, atts)
}

// enqueue runs job on the socket's dispatch goroutine, in order.
func (s *Socket) enqueue(job func()) { s.queue.Push(job) }

// Close disconnects the socket (the server sees "client namespace
// disconnect") and closes the connection when no other namespace uses it.
// Handlers still running finish on their own; the OnDisconnect functions
// run after them.
func (s *Socket) Close() error {
	if s.err != nil {
		return nil
	}
	s.disconnect(true, ReasonClientDisconnect)
	return nil
}

// disconnect ends the socket; with sendPacket the server is told.
func (s *Socket) disconnect(sendPacket bool, reason string) {
	s.mu.Lock()
	was := s.state
	if was == stateClosed || was == stateIdle {
		s.state = stateClosed
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	if sendPacket && was == stateConnected {
		s.m.send(&parser.Packet{Type: parser.Disconnect, Namespace: s.nsp, ID: parser.NoID})
	}
	s.m.release(s, sendPacket)
	s.closed(reason)
}

// closed marks the socket disconnected and runs the OnDisconnect
// functions on its goroutine.
func (s *Socket) closed(reason string) {
	s.mu.Lock()
	if s.state == stateClosed && s.reason != "" {
		s.mu.Unlock()
		return
	}
	was := s.state
	s.state = stateClosed
	s.reason = reason
	if s.done == nil {
		s.done = make(chan struct{})
	}
	fns := s.onDisconnect
	result := s.result
	s.mu.Unlock()
	if was == stateConnecting {
		result <- fmt.Errorf("rally/client: connection closed: %s", reason)
	}
	s.enqueue(func() {
		for _, fn := range fns {
			fn(reason)
		}
		s.mu.Lock()
		close(s.done)
		s.mu.Unlock()
	})
}
