package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/internal/callback"
	"github.com/rallyhq/rally/internal/parser"
	"github.com/rallyhq/rally/internal/serial"
)

// Socket is a connection to one namespace of a server. It is safe for
// concurrent use.
//
// A socket lives from Connect to its end (see Done): the application
// disconnects it, the server disconnects it from the namespace, or its
// connection is lost and not given back (reconnection off, attempts
// exhausted, or the server refusing the namespace on reconnection). In
// between it may lose its connection any number of times and get it back:
// OnDisconnect and OnConnect functions see each of those.
type Socket struct {
	m    *Manager
	nsp  string
	auth any
	err  error // from New

	sendMu sync.Mutex // orders emits with the flush of the send buffer

	mu             sync.Mutex
	id             string
	state          int
	joined         *session // the connection the last CONNECT was sent on
	authJSON       json.RawMessage
	result         chan error // ends the Connect in progress; nil once sent
	handlers       map[string]*callback.Func
	onAny          []func(event string, args rally.Reply)
	onConnect      []func()
	onConnectError []func(err error)
	onDisconnect   []func(reason string)
	acks           map[int64]*pendingAck
	nextAck        int64
	sendBuf        []*parser.Packet // emits waiting for a connection
	recvBuf        []*parser.Packet // events received before the CONNECT reply
	pid            string           // private session id, for recovery
	offset         string           // offset of the last event received
	recovered      bool
	lostReason     string // why the connection was last lost
	reason         string
	done           chan struct{}

	queue serial.Queue // handlers and listeners, in order
}

const (
	stateIdle         = iota // not connected: never, or Connect failed
	stateConnecting          // Connect in progress
	stateConnected           // joined
	stateReconnecting        // lost its connection, waits for another
	stateClosed              // ended; Connect starts a new life
)

// pendingAck is an EmitWithAck waiting for its answer.
type pendingAck struct {
	ch       chan ackResult // buffered: one result
	buffered bool           // its packet waits in sendBuf
}

type ackResult struct {
	reply rally.Reply
	err   error
}

// ID returns the socket id the server assigned at the last connection, or
// "" before Connect. A reconnection without recovery brings a new id.
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

// Active reports whether the socket is connected or will be: connecting,
// or waiting for a reconnection (the official client's socket.active).
func (s *Socket) Active() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == stateConnecting || s.state == stateConnected || s.state == stateReconnecting
}

// Recovered reports whether the last connection recovered the state of
// the one before (the official client's socket.recovered): the server has
// connection state recovery on, and the CONNECT reply carried the private
// session id the socket sent. A recovered socket keeps its id and rooms,
// and received the events it missed, before any other.
func (s *Socket) Recovered() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recovered
}

// Buffered returns how many emits wait for the socket to be connected
// (the length of the official client's sendBuffer).
func (s *Socket) Buffered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sendBuf)
}

// On registers the handler of an event. Its parameters are decoded from
// the event's arguments (JSON into Go values, binary into []byte); its
// results, a last error excepted, are the acknowledgement when the server
// asked for one ({"error": message} when the error is not nil); a handler
// that takes an Ack as its last parameter answers through it instead.
// Handlers run one at a time, in the order events arrive. On panics if
// handler is not a usable function.
//
// With connection state recovery on, the server adds the event's offset
// as a last string argument to the events it broadcasts; as in the
// official client, it is not removed: a handler with fewer parameters
// ignores it, a variadic one and OnAny see it.
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

// OnConnect registers a function called each time the socket joins its
// namespace: after Connect and after every reconnection (the official
// connect event). It runs with the handlers, in order: before any event
// of that connection, those the server sent before its CONNECT reply
// included (a recovered socket's missed events).
func (s *Socket) OnConnect(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onConnect = append(s.onConnect, fn)
}

// OnConnectError registers a function called when the server refuses the
// namespace (the official connect_error event for a CONNECT_ERROR), with
// a *rally.ConnectError: on Connect, which returns the same error, or on a
// reconnection, after which the socket ends.
func (s *Socket) OnConnectError(fn func(err error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onConnectError = append(s.onConnectError, fn)
}

// OnDisconnect registers a function called each time the socket loses its
// namespace, with the reason (the official disconnect event):
// ReasonServerDisconnect, ReasonClientDisconnect, or the connection's
// close reason (ReasonTransportClose, ReasonPingTimeout, ...), after which
// the socket reconnects unless reconnection is off. Done tells the end.
func (s *Socket) OnDisconnect(fn func(reason string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onDisconnect = append(s.onDisconnect, fn)
}

// Done returns a channel closed when the socket has ended, after its
// OnDisconnect functions ran: disconnected by the application or the
// server, or its connection lost for good (reconnection off, attempts
// exhausted, or the namespace refused on reconnection). A lost connection
// that is being reconnected does not close it. After a new Connect, Done
// returns a new channel.
func (s *Socket) Done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.doneLocked()
}

func (s *Socket) doneLocked() chan struct{} {
	if s.done == nil {
		s.done = make(chan struct{})
	}
	return s.done
}

// Reason returns why the socket ended, or "" while it has not: the reason
// of its last OnDisconnect when its connection was lost for good.
func (s *Socket) Reason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

// Connect opens the connection if needed and joins the namespace. It
// returns a *rally.ConnectError when the server refuses (Data holds the
// refusal's data as JSON), or ctx's error.
//
// Connect makes one attempt: unlike the official client, it does not
// retry a first connection that fails (the server unreachable, or the
// connection lost before the namespace is joined) but returns the error,
// and the socket can Connect again. Once connected, a lost connection is
// reconnected by itself. While the manager is reconnecting for another
// namespace, Connect waits for that reconnection. A socket that ended can
// Connect again; a socket that is active cannot.
func (s *Socket) Connect(ctx context.Context) error {
	if s.err != nil {
		return s.err
	}
	var auth json.RawMessage
	if s.auth != nil {
		data, err := json.Marshal(s.auth)
		if err != nil {
			return fmt.Errorf("rally/client: encoding auth: %w", err)
		}
		auth = data
	}
	s.mu.Lock()
	if s.state != stateIdle && s.state != stateClosed {
		s.mu.Unlock()
		return errors.New("rally/client: Connect on a socket that is connecting or connected")
	}
	if s.state == stateClosed {
		s.done = nil // the ended life's channel is closed by its end
	}
	s.state = stateConnecting
	result := make(chan error, 1)
	s.result = result
	s.joined = nil
	s.authJSON = auth
	s.reason, s.lostReason = "", ""
	s.recovered = false
	s.mu.Unlock()

	if err := s.m.register(s); err != nil {
		s.mu.Lock()
		s.state, s.result = stateIdle, nil
		s.mu.Unlock()
		return err
	}
	err := s.m.join(ctx, s)
	if err == nil {
		select {
		case err = <-result:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err != nil {
		s.abandon(err)
	}
	return err
}

// abandon undoes a Connect that failed with err.
func (s *Socket) abandon(err error) {
	s.mu.Lock()
	switch s.state {
	case stateConnecting:
		s.state, s.result = stateIdle, nil
		s.dropBufferLocked(err)
		s.mu.Unlock()
		s.m.release(s, true)
	case stateConnected, stateReconnecting:
		// Connected as ctx ended.
		s.mu.Unlock()
		s.disconnect(true, ReasonClientDisconnect)
	default:
		s.mu.Unlock()
	}
}

// Emit sends an event to the server; []byte values anywhere in args travel
// as binary attachments. While the socket is connecting or waiting for a
// reconnection, the event is kept and sent once it is connected, in order
// (see Options.MaxBufferedEmits); events still kept when the socket ends,
// or when the Connect in progress fails, are dropped.
func (s *Socket) Emit(event string, args ...any) error {
	p, err := s.eventPacket(event, args)
	if err != nil {
		return err
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.mu.Lock()
	switch s.state {
	case stateConnected:
		sess := s.joined
		s.mu.Unlock()
		return sess.send(p)
	case stateConnecting, stateReconnecting:
		err := s.bufferLocked(p)
		s.mu.Unlock()
		return err
	}
	s.mu.Unlock()
	return ErrNotConnected
}

// Send emits the "message" event.
func (s *Socket) Send(args ...any) error { return s.Emit("message", args...) }

// EmitWithAck sends an event and waits for the server's acknowledgement
// until ctx ends. An error ack ({"error": ...}) is returned as the reply
// with a *rally.AckError. While the socket is connecting or waiting for a
// reconnection, the event is kept as Emit does and the wait goes on; an
// event already sent when the connection is lost fails with
// rally.ErrDisconnected, as does any when the socket ends.
func (s *Socket) EmitWithAck(ctx context.Context, event string, args ...any) (rally.Reply, error) {
	p, err := s.eventPacket(event, args)
	if err != nil {
		return rally.Reply{}, err
	}
	a := &pendingAck{ch: make(chan ackResult, 1)}
	s.sendMu.Lock()
	s.mu.Lock()
	state := s.state
	if state != stateConnected && state != stateConnecting && state != stateReconnecting {
		s.mu.Unlock()
		s.sendMu.Unlock()
		return rally.Reply{}, ErrNotConnected
	}
	p.ID = s.nextAck
	s.nextAck++
	if s.acks == nil {
		s.acks = make(map[int64]*pendingAck)
	}
	if state == stateConnected {
		s.acks[p.ID] = a
		sess := s.joined
		s.mu.Unlock()
		err = sess.send(p)
	} else if err = s.bufferLocked(p); err == nil {
		a.buffered = true
		s.acks[p.ID] = a
		s.mu.Unlock()
	} else {
		s.mu.Unlock()
	}
	s.sendMu.Unlock()
	if err != nil {
		s.forgetAck(p)
		return rally.Reply{}, err
	}
	select {
	case r := <-a.ch:
		if r.err != nil {
			return rally.Reply{}, fmt.Errorf("rally/client: waiting for the ack of %q: %w", event, r.err)
		}
		return r.reply, r.reply.Err()
	case <-ctx.Done():
		s.forgetAck(p)
		return rally.Reply{}, fmt.Errorf("rally/client: waiting for the ack of %q: %w", event, ctx.Err())
	}
}

// bufferLocked keeps p to send once connected.
func (s *Socket) bufferLocked(p *parser.Packet) error {
	limit := s.m.opts.maxBufferedEmits()
	switch {
	case limit == 0:
		return ErrNotConnected
	case len(s.sendBuf) >= limit:
		return ErrBufferFull
	}
	s.sendBuf = append(s.sendBuf, p)
	return nil
}

// forgetAck stops waiting for the ack of p, and drops p if it is still
// kept: the official client, too, takes an event whose ack timed out out
// of its buffer.
func (s *Socket) forgetAck(p *parser.Packet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.acks[p.ID]; a != nil && a.buffered {
		s.sendBuf = slices.DeleteFunc(s.sendBuf, func(q *parser.Packet) bool { return q == p })
	}
	delete(s.acks, p.ID)
}

// dropBufferLocked drops the kept emits; those waiting for an ack fail
// with err.
func (s *Socket) dropBufferLocked(err error) {
	for _, p := range s.sendBuf {
		if a := s.acks[p.ID]; p.ID != parser.NoID && a != nil {
			delete(s.acks, p.ID)
			a.ch <- ackResult{err: err}
		}
	}
	s.sendBuf = nil
}

func (s *Socket) eventPacket(event string, args []any) (*parser.Packet, error) {
	p, err := rally.NewPacket(event, args...)
	if err != nil {
		return nil, err
	}
	typ := parser.Event
	if len(p.Attachments) > 0 {
		typ = parser.BinaryEvent
	}
	return &parser.Packet{Type: typ, Namespace: s.nsp, ID: parser.NoID, Data: p.Data, Attachments: p.Attachments}, nil
}

func (s *Socket) resolveAck(p *parser.Packet) {
	s.mu.Lock()
	a := s.acks[p.ID]
	delete(s.acks, p.ID)
	s.mu.Unlock()
	if a != nil {
		args, _ := parser.SplitArray(p.Data)
		a.ch <- ackResult{reply: rally.NewReply(args, p.Attachments)}
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

// Disconnect disconnects the socket (the server sees "client namespace
// disconnect"), for good: it does not reconnect. The connection closes
// when no other namespace uses it. Handlers still running finish on their
// own; the OnDisconnect functions run after them. A Connect in progress
// fails. It is the official client's socket.disconnect(); Close does the
// same.
func (s *Socket) Disconnect() error {
	if s.err != nil {
		return nil
	}
	s.disconnect(true, ReasonClientDisconnect)
	return nil
}

// Close is Disconnect.
func (s *Socket) Close() error { return s.Disconnect() }
