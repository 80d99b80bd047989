package rally

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rallyhq/rally/internal/callback"
	"github.com/rallyhq/rally/internal/engineio"
	"github.com/rallyhq/rally/internal/parser"
	"github.com/rallyhq/rally/internal/serial"
)

// Disconnect reasons, as the official server reports them.
const (
	// The client disconnected the socket (socket.disconnect()).
	ReasonClientNamespaceDisconnect = "client namespace disconnect"
	// The server disconnected the socket (Socket.Disconnect, DisconnectSockets).
	ReasonServerNamespaceDisconnect = "server namespace disconnect"
	// The client closed the connection, or it was lost.
	ReasonTransportClose = engineio.ReasonTransportClose
	// The connection failed (network error, message too large, protocol misuse).
	ReasonTransportError = engineio.ReasonTransportError
	// The client did not answer a ping in time.
	ReasonPingTimeout = engineio.ReasonPingTimeout
	// The client sent a malformed Engine.IO packet.
	ReasonParseError = engineio.ReasonParseError
	// The server closed the connection, for instance after a malformed
	// Socket.IO packet.
	ReasonForcedClose = engineio.ReasonForcedClose
	// The client broke the protocol (a packet for a namespace it has not
	// joined, a second CONNECT) or joined no namespace in time.
	ReasonForcedServerClose = "forced server close"
	// The hub shut down.
	ReasonServerShuttingDown = "server shutting down"
	// The client did not read what was sent to it fast enough and its
	// queue reached Options.MaxQueuedBytes. The official server has no
	// such limit.
	ReasonQueueFull = engineio.ReasonQueueFull
)

// ErrDisconnected is returned when emitting to, or waiting for an
// acknowledgement from, a socket that has disconnected.
var ErrDisconnected = errors.New("rally: socket disconnected")

type socketState int32

const (
	stateConnecting socketState = iota
	stateConnected
	stateClosed
)

// Socket is one client connected to one namespace. It is safe for
// concurrent use.
type Socket struct {
	id        string
	pid       string // private session id, with connection state recovery
	recovered bool
	persisted chan struct{} // with recovery, closed once the session is kept (or not, if not recoverable)
	nsp       *Namespace
	conn      *conn
	handshake *Handshake
	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{} // closed on disconnect

	state atomic.Int32 // socketState; changes under nsp.mu
	// dropEvents is set when the socket disconnects for another reason
	// than the client's own DISCONNECT: its events still waiting are
	// not handled.
	dropEvents atomic.Bool
	rooms      map[string]struct{} // guarded by nsp.mu
	// abandoned is set, under nsp.mu, once the socket left its rooms for
	// good; until then, a socket that disconnected still joins rooms, as
	// its OnConnect handlers may when the client leaves at once.
	abandoned bool

	mu              sync.Mutex
	handlers        map[string]*callback.Func
	acks            map[int64]func(Reply)
	data            any
	eventMiddleware []EventMiddleware
	anyListeners    catchAlls
	anyOutgoing     catchAlls
	// hasOutgoing is set while anyOutgoing is not empty, so that
	// broadcasts to a socket without listeners look no further.
	hasOutgoing atomic.Bool

	queue serial.Queue // handlers, connect and disconnect, in order

	errLimit errorLimiter // the default error log's budget for this socket
}

// Handshake holds the details of the request that opened a connection and
// of the CONNECT packet that joined the namespace. The sockets of one
// connection share its Header and Query: treat them as read-only.
type Handshake struct {
	// Header holds the headers of the connection's first HTTP request.
	Header http.Header
	// Host is the host the first request was sent to (net/http keeps it
	// out of Header).
	Host string
	// Query holds the query of the first request (EIO, transport and the
	// client's own parameters).
	Query url.Values
	// Auth is the client's auth payload (the JSON object of the client's
	// auth option), or nil when it sent none.
	Auth json.RawMessage
	// Address is the client's IP address.
	Address string
	// Secure reports whether the connection came over TLS.
	Secure bool
	// CrossOrigin reports whether the first request had an Origin header.
	CrossOrigin bool
	// URL is the URL of the first request.
	URL string
	// Issued is when the socket connected.
	Issued time.Time
}

// DecodeAuth decodes the client's auth payload into v.
func (h *Handshake) DecodeAuth(v any) error {
	if len(h.Auth) == 0 {
		return errors.New("rally: the client sent no auth payload")
	}
	return json.Unmarshal(h.Auth, v)
}

func newSocket(n *Namespace, c *conn, auth json.RawMessage) *Socket {
	// The socket's context ends when the socket disconnects, not with
	// the connection; it keeps the request's values.
	ctx, cancel := context.WithCancel(context.WithoutCancel(c.sess.Context()))
	hs := c.handshake // Header and Query are shared with the connection's other sockets
	hs.Auth, hs.Issued = auth, time.Now()
	s := &Socket{
		id:        c.socketID(n),
		nsp:       n,
		conn:      c,
		handshake: &hs,
		ctx:       ctx,
		cancel:    cancel,
		done:      make(chan struct{}),
		rooms:     make(map[string]struct{}),
		queue:     serial.Queue{Start: n.hub.startDispatch, Done: n.hub.dispatchDone},
	}
	if n.hub.recovery != nil {
		s.pid = newSocketID()
		s.persisted = make(chan struct{})
	}
	return s
}

// newSocketID returns a new socket id or private session id: 20 URL-safe
// characters from crypto/rand.
func newSocketID() string { return engineio.NewID() }

// ID returns the socket's id, unique to this socket and namespace. Every
// socket is in the room named by its id.
func (s *Socket) ID() string { return s.id }

// Namespace returns the socket's namespace.
func (s *Socket) Namespace() *Namespace { return s.nsp }

// Handshake returns the details of the connection's handshake.
func (s *Socket) Handshake() *Handshake { return s.handshake }

// Context returns a context that carries the values of the handshake
// request's context (those set by HTTP middleware) and is canceled when
// the socket disconnects, so that handlers still running can stop. Work
// that must outlive the socket, such as what an OnDisconnect handler does,
// can keep the values with context.WithoutCancel(s.Context()).
func (s *Socket) Context() context.Context { return s.ctx }

// Transport returns the name of the connection's current transport.
func (s *Socket) Transport() string { return s.conn.sess.Transport() }

// Connected reports whether the socket is connected.
func (s *Socket) Connected() bool { return s.isConnected() }

func (s *Socket) isConnecting() bool { return socketState(s.state.Load()) == stateConnecting }

func (s *Socket) isConnected() bool { return socketState(s.state.Load()) == stateConnected }

// SetData stores an application value with the socket, such as a user
// name; Data returns it.
func (s *Socket) SetData(v any) {
	s.mu.Lock()
	s.data = v
	s.mu.Unlock()
	s.nsp.hub.noteSocketDataSet(s)
}

// Data returns the value stored by SetData, or nil.
func (s *Socket) Data() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data
}

// On registers the handler of an event for this socket only; it takes
// precedence over the namespace's handler of that event. The handler's form
// is the one Namespace.On describes. On panics if the handler is unusable.
func (s *Socket) On(event string, handler any) {
	f := mustHandler(event, handler)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.handlers == nil {
		s.handlers = make(map[string]*callback.Func)
	}
	s.handlers[event] = f
}

// Off removes the socket's handler of event, registered with On (Node's
// socket.off(event, listener) and socket.removeAllListeners(event); rally
// keeps one handler per event, so there is no listener to name). The namespace's handler of the event, if
// any, takes it again; without one, the event goes to OnUnhandled or is
// dropped, as Node drops an event no listener takes. An OnAny listener
// that removes the handler of the event being dispatched keeps it from
// that event too, as with Node. Off of an event without a handler does
// nothing.
func (s *Socket) Off(event string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.handlers, event)
}

// RemoveAllListeners removes every handler registered with the socket's
// On (Node's socket.removeAllListeners()); the namespace's handlers, the
// catch-all listeners and packet middleware stay, as Node keeps
// onAny listeners and socket.use middleware. For one event, use Off.
func (s *Socket) RemoveAllListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers = nil
}

// handler returns the function that handles event on this socket.
func (s *Socket) handler(event string) *callback.Func {
	s.mu.Lock()
	f := s.handlers[event]
	s.mu.Unlock()
	if f != nil {
		return f
	}
	return s.nsp.handler(event)
}

// Emit sends an event to this socket. Arguments are encoded as JSON;
// []byte values, anywhere in them, travel as binary attachments and reach
// JavaScript as Buffer or ArrayBuffer.
func (s *Socket) Emit(event string, args ...any) error {
	p, err := eventPacket(s.nsp.name, event, args, parser.NoID)
	if err != nil {
		return err
	}
	if !s.isConnected() {
		return ErrDisconnected
	}
	if ra := s.nsp.recoveryAdapter(); ra != nil {
		// recorded, so that the client can recover it
		return ra.Broadcast(context.Background(), Packet{Data: p.Data, Attachments: p.Attachments}, BroadcastOptions{Rooms: []string{s.id}})
	}
	if err := s.conn.send(p); err != nil {
		return err
	}
	s.notifyOutgoing(p.Data, p.Attachments)
	return nil
}

// Compress(false) selects this socket for events sent uncompressed (Node's
// socket.compress(false)); see Broadcast.Compress.
func (s *Socket) Compress(on bool) Broadcast { return s.nsp.In(s.id).Compress(on) }

// Volatile selects this socket for events it may miss when its connection
// cannot take them at once (Node's socket.volatile); see
// Broadcast.Volatile.
func (s *Socket) Volatile() Broadcast { return s.nsp.In(s.id).Volatile() }

// Send emits the "message" event (socket.send).
func (s *Socket) Send(args ...any) error { return s.Emit("message", args...) }

// EmitWithAck sends an event asking the client to acknowledge it, and
// waits for the answer until ctx ends or the socket disconnects. If the
// client answers with an error ({"error": "..."}), the reply is returned
// with an *AckError.
func (s *Socket) EmitWithAck(ctx context.Context, event string, args ...any) (Reply, error) {
	id := s.nsp.nextAckID()
	p, err := eventPacket(s.nsp.name, event, args, id)
	if err != nil {
		return Reply{}, err
	}
	ch := make(chan Reply, 1)
	if !s.addAck(id, func(r Reply) { ch <- r }) {
		return Reply{}, ErrDisconnected
	}
	defer s.removeAck(id)
	start := time.Now()
	if err := s.conn.send(p); err != nil {
		return Reply{}, ErrDisconnected
	}
	s.notifyOutgoing(p.Data, p.Attachments)
	var r Reply
	select {
	case r = <-ch:
		err = r.Err()
	case <-ctx.Done():
		err = fmt.Errorf("rally: waiting for the ack of %q: %w", event, ctx.Err())
	case <-s.done:
		err = ErrDisconnected
	}
	s.nsp.hub.noteAckRoundTrip(s.nsp, start, err)
	return r, err
}

// addAck registers the function that receives the ack with the given id;
// it is called at most once.
func (s *Socket) addAck(id int64, fn func(Reply)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if socketState(s.state.Load()) == stateClosed {
		return false
	}
	if s.acks == nil {
		s.acks = make(map[int64]func(Reply))
	}
	s.acks[id] = fn
	return true
}

func (s *Socket) removeAck(id int64) {
	s.mu.Lock()
	delete(s.acks, id)
	s.mu.Unlock()
}

// resolveAck delivers an ACK packet to the emit waiting for it. Unknown and
// repeated ids are ignored.
func (s *Socket) resolveAck(p *parser.Packet) {
	s.mu.Lock()
	fn := s.acks[p.ID]
	delete(s.acks, p.ID)
	s.mu.Unlock()
	if fn == nil {
		return
	}
	args, _ := parser.SplitArray(p.Data)
	fn(Reply{args: args, attachments: p.Attachments})
}

// Join adds the socket to rooms. Once the socket has disconnected and its
// OnDisconnect handlers have run, it joins nothing.
func (s *Socket) Join(rooms ...string) { s.nsp.join(s, rooms) }

// Leave removes the socket from rooms; leaving a room it is not in does
// nothing.
func (s *Socket) Leave(rooms ...string) { s.nsp.leave(s, rooms) }

// Rooms returns the rooms the socket is in, its own id included.
func (s *Socket) Rooms() []string { return s.nsp.socketRooms(s) }

// Broadcast selects every socket of the namespace but this one
// (socket.broadcast).
func (s *Socket) Broadcast() Broadcast { return s.nsp.All().Except(s.id) }

// To selects the sockets in any of the rooms, except this one
// (socket.to(room)).
func (s *Socket) To(rooms ...string) Broadcast { return s.Broadcast().To(rooms...) }

// Except selects every socket of the namespace in none of the rooms,
// except this one.
func (s *Socket) Except(rooms ...string) Broadcast { return s.Broadcast().Except(rooms...) }

// Disconnect disconnects the socket: the client gets a DISCONNECT packet
// and does not reconnect by itself. With closeConn, every namespace of the
// client's connection is disconnected and the connection closed.
func (s *Socket) Disconnect(closeConn bool) {
	if closeConn {
		s.conn.disconnectAll()
		return
	}
	s.close(ReasonServerNamespaceDisconnect, true)
}

// CloseConnection closes the socket's connection, with every namespace
// on it, without DISCONNECT packets (Node's socket.conn.close()): what is
// queued is written first, then the transport is closed. The client sees
// the transport close and, unlike after Disconnect, reconnects by itself.
// The sockets' OnDisconnect handlers get ReasonForcedClose.
func (s *Socket) CloseConnection() { s.conn.sess.Close() }

// enqueue runs job on the socket's dispatch goroutine, after the jobs
// queued before it. The goroutine, pooled, exists only while jobs are
// queued.
func (s *Socket) enqueue(job func()) { s.queue.Push(job) }

// runConnect runs the connect middleware and, if it lets the socket in,
// connects it and calls the OnConnect handlers. A socket that recovers a
// session skips the middleware, unless Recovery.RunMiddleware.
func (s *Socket) runConnect() {
	n := s.nsp
	sess, offset := s.restore()
	ranMiddleware := sess == nil || n.hub.recovery.RunMiddleware
	if ranMiddleware && !s.runMiddleware() {
		return
	}
	connected := false
	if sess != nil {
		var ok bool
		if ok, connected = s.connectRecovered(sess, offset); !ok {
			s.reset() // what it missed is gone: a new socket
			if !s.runMiddleware() {
				return
			}
			sess = nil
		}
	}
	if sess == nil {
		if !n.connect(s, nil) {
			s.connectFailed()
			return
		}
		s.sendConnectReply()
		connected = true
	}
	if !connected {
		return // the connection closed meanwhile
	}
	// The OnConnect handlers run even if the client left meanwhile: its
	// OnDisconnect handlers come after them.
	if len(n.hub.observers()) > 0 {
		n.hub.noteSocketConnected(s)
		n.hub.noteRooms(s, s.Rooms(), true)
	}
	for _, fn := range n.connectHandlers() {
		if err := protect(func() error { fn(s); return nil }); err != nil {
			n.hub.reportError(s, fmt.Errorf("rally: OnConnect handler: %w", err))
		}
	}
}

// runMiddleware runs the connect middleware, and refuses the socket and
// reports false if one fails.
func (s *Socket) runMiddleware() bool {
	n := s.nsp
	for _, mw := range n.connectMiddleware() {
		err := protect(func() error { return mw(s) })
		if err == nil {
			continue
		}
		if callback.IsPanic(err) {
			n.hub.reportError(s, fmt.Errorf("rally: connect middleware: %w", err))
		}
		s.refuse(err)
		return false
	}
	return true
}

// connectFailed handles a socket that could not connect: the connection
// closed while the middleware ran, or the namespace was removed.
func (s *Socket) connectFailed() {
	if s.isConnecting() && s.nsp.isRemoved() {
		s.refuse(errors.New("Invalid namespace")) // closed meanwhile
	}
}

// sendConnectReply confirms the connection to the client, with the
// socket's private session id when recovery is on.
func (s *Socket) sendConnectReply() {
	if s.conn.v3 {
		// Socket.IO protocol v4: no data; the client's id is its own.
		s.conn.send(&parser.Packet{Type: parser.Connect, Namespace: s.nsp.name, ID: parser.NoID})
		return
	}
	reply, _ := json.Marshal(struct {
		SID string `json:"sid"`
		PID string `json:"pid,omitempty"`
	}{s.id, s.pid})
	s.conn.send(&parser.Packet{Type: parser.Connect, Namespace: s.nsp.name, ID: parser.NoID, Data: reply})
}

// refuse answers a CONNECT with CONNECT_ERROR carrying err's message (and
// data, for a *ConnectError).
func (s *Socket) refuse(err error) {
	payload := struct {
		Message string `json:"message"`
		Data    any    `json:"data,omitempty"`
	}{Message: err.Error()}
	var ce *ConnectError
	if errors.As(err, &ce) {
		payload.Message, payload.Data = ce.Message, ce.Data
	}
	if callback.IsPanic(err) {
		payload.Message = "internal server error"
	}
	var data []byte
	var merr error
	if s.conn.v3 {
		// Socket.IO protocol v4 carries one value, as Node sends it:
		// the error's data if any, its message otherwise.
		if payload.Data != nil {
			data, merr = json.Marshal(payload.Data)
		} else {
			data, merr = json.Marshal(payload.Message)
		}
	} else {
		data, merr = json.Marshal(payload)
	}
	if merr != nil {
		data, _ = json.Marshal(map[string]string{"message": payload.Message})
	}
	if _, ok := s.nsp.disconnect(s); !ok {
		return // the connection closed meanwhile
	}
	s.conn.forget(s)
	close(s.done)
	s.nsp.abandon(s)
	s.conn.send(&parser.Packet{Type: parser.ConnectError, Namespace: s.nsp.name, ID: parser.NoID, Data: data})
	s.finish()
	s.nsp.cleanupIfEmpty()
}

// dispatch calls the handler of an EVENT packet and answers its ack. Once
// the socket has disconnected, its events are dropped, but for those the
// client sent before its own DISCONNECT: they came first.
func (s *Socket) dispatch(p *parser.Packet) {
	if s.dropEvents.Load() {
		return
	}
	elems, err := parser.SplitArray(p.Data)
	if err != nil || len(elems) == 0 {
		return // the decoder validated the payload
	}
	event, _ := parser.EventName(p.Data)
	args, atts := elems[1:], p.Attachments
	mws, anys, unhandled := s.listeners()
	if mws != nil || anys != nil {
		var ok bool
		if args, atts, ok = s.throughListeners(event, args, p, mws, anys); !ok {
			return
		}
	}
	f := s.handler(event)
	if f == nil {
		if unhandled != nil {
			s.dispatchUnhandled(unhandled, &Event{Name: event, args: Reply{args: args, attachments: atts}}, p.ID)
		}
		return // no ack either, as the official server
	}
	if f.TakesAck() {
		s.dispatchWithAck(f, event, args, atts, p.ID)
		return
	}
	results, err := f.Call([]reflect.Value{reflect.ValueOf(s)}, args, atts, reflect.Value{})
	if err != nil {
		err = &EventError{Event: event, Err: err}
		s.nsp.hub.reportError(s, err)
		if p.ID != parser.NoID {
			s.ackError(p.ID, err)
		}
		return
	}
	if p.ID == parser.NoID {
		return
	}
	data, atts, err := parser.MarshalAck(results)
	if err != nil {
		err = &EventError{Event: event, Err: fmt.Errorf("encoding the ack: %w", err)}
		s.nsp.hub.reportError(s, err)
		s.ackError(p.ID, err)
		return
	}
	s.sendAck(p.ID, data, atts)
}

// dispatchWithAck calls a handler that answers through an Ack.
func (s *Socket) dispatchWithAck(f *callback.Func, event string, args []json.RawMessage, atts [][]byte, id int64) {
	ack := s.newAck(id)
	defer ack.handlerReturned()
	if _, err := f.Call([]reflect.Value{reflect.ValueOf(s)}, args, atts, reflect.ValueOf(ack)); err != nil {
		s.handlerFailed(event, err, ack)
	}
}

// dispatchUnhandled calls the OnUnhandled handler.
func (s *Socket) dispatchUnhandled(fn func(*Socket, *Event, Ack), e *Event, id int64) {
	ack := s.newAck(id)
	defer ack.handlerReturned()
	if err := protect(func() error { fn(s, e, ack); return nil }); err != nil {
		s.handlerFailed(e.Name, err, ack)
	}
}

// handlerFailed reports a handler's error and answers it, if asked and
// not answered yet.
func (s *Socket) handlerFailed(event string, err error, ack Ack) {
	err = &EventError{Event: event, Err: err}
	s.nsp.hub.reportError(s, err)
	if ack.st != nil {
		ack.st.sendError(err)
	}
}

// ackError answers an ack request with the error form of an ack, whose
// message shows the client nothing of the server (see AckError).
func (s *Socket) ackError(id int64, err error) {
	data, _ := json.Marshal([]AckError{{Message: ackMessage(err)}})
	s.sendAck(id, data, nil)
}

// sendAck answers from the socket's goroutine, writing the ack there when
// nothing else is being written.
func (s *Socket) sendAck(id int64, data json.RawMessage, atts [][]byte) {
	s.writeAck(id, data, atts, true)
}

// writeAck sends an ACK packet; inline when called from the socket's
// goroutine (see conn.reply), queued for the writer otherwise.
func (s *Socket) writeAck(id int64, data json.RawMessage, atts [][]byte, inline bool) {
	typ := parser.Ack
	if len(atts) > 0 {
		typ = parser.BinaryAck
	}
	p := &parser.Packet{Type: typ, Namespace: s.nsp.name, ID: id, Data: data, Attachments: atts}
	if inline {
		s.conn.reply(p)
	} else {
		s.conn.send(p)
	}
}

// close disconnects the socket with reason, sending a DISCONNECT packet if
// asked. The OnDisconnect handlers then run on the socket's goroutine,
// after the handlers of events received before.
func (s *Socket) close(reason string, sendPacket bool) {
	if reason != ReasonClientNamespaceDisconnect {
		s.dropEvents.Store(true) // before the disconnect can be seen
	}
	wasConnected, ok := s.nsp.disconnect(s)
	if !ok {
		return
	}
	s.conn.forget(s)
	close(s.done)
	s.cancel()
	if wasConnected {
		s.nsp.hub.noteSocketDisconnected(s, reason)
	}
	if !wasConnected {
		s.nsp.abandon(s)
		s.finish()
		s.nsp.cleanupIfEmpty()
		return
	}
	if sendPacket {
		s.conn.send(&parser.Packet{Type: parser.Disconnect, Namespace: s.nsp.name, ID: parser.NoID})
	}
	_, inMemory := s.nsp.adapter.(*memoryAdapter)
	if inMemory {
		s.persist(reason) // at once: the client may be reconnecting already
	}
	s.enqueue(func() {
		if !inMemory {
			s.persist(reason) // on the socket's goroutine: the adapter may block
		}
		for _, fn := range s.nsp.disconnectHandlers() {
			if err := protect(func() error { fn(s, reason); return nil }); err != nil {
				s.nsp.hub.reportError(s, fmt.Errorf("rally: OnDisconnect handler: %w", err))
			}
		}
		s.nsp.abandon(s)
		s.finish()
		s.nsp.cleanupIfEmpty()
	})
}

// finish releases what the socket holds once it is gone.
func (s *Socket) finish() {
	s.cancel()
	s.mu.Lock()
	s.acks = nil
	s.mu.Unlock()
}

// protect calls fn and turns a panic into a *callback.PanicError.
func protect(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &callback.PanicError{Value: p}
		}
	}()
	return fn()
}
