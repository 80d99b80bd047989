// Package rally serves Socket.IO clients from Go: one http.Handler that
// speaks Socket.IO v5 over Engine.IO v4 (long-polling and websocket), so the
// official socket.io-client, in browsers and in Node, connects to it
// unchanged.
//
// A Hub holds namespaces; the main namespace "/" is reached through the
// Hub's own methods. Handlers are ordinary Go functions whose parameters are
// decoded from the event's JSON arguments:
//
//	hub := rally.NewHub(nil)
//	hub.On("chat", func(s *rally.Socket, text string) {
//		s.Broadcast().Emit("chat", s.ID(), text)
//	})
//	http.Handle("/socket.io/", hub)
package rally

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rallyhq/rally/internal/engineio"
	"github.com/rallyhq/rally/internal/gopool"
	"github.com/rallyhq/rally/internal/parser"
)

// Transport names, for Options.Transports.
const (
	TransportPolling   = engineio.TransportPolling
	TransportWebSocket = engineio.TransportWebSocket
)

// Options configures a Hub. The zero value of every field takes the official
// Socket.IO server's default.
type Options struct {
	// PingInterval is how often the server pings each client (25s).
	PingInterval time.Duration
	// PingTimeout is how long a ping may go unanswered before the
	// connection is closed (20s).
	PingTimeout time.Duration
	// UpgradeTimeout bounds an upgrade from polling to websocket (10s).
	UpgradeTimeout time.Duration
	// ConnectTimeout closes a connection that joined no namespace in time
	// (45s).
	ConnectTimeout time.Duration
	// MaxHTTPBufferSize is the largest message or polling request body a
	// client may send, in bytes (1e6). Larger websocket messages close the
	// connection (status 1009); larger POST bodies get 413.
	MaxHTTPBufferSize int64
	// MaxQueuedBytes bounds what may wait to be written to one client, the
	// write in progress included (16 × MaxHTTPBufferSize: a burst of
	// sixteen messages of the largest size). A client that falls further
	// behind, such as one that stopped reading, is disconnected with
	// ReasonQueueFull rather than let its queue grow: memory stays bounded
	// and other clients are not slowed. That is the choice for everything
	// that must arrive; what may be lost instead is sent with Volatile(),
	// which drops a packet rather than queue it behind others. Negative
	// means no limit.
	MaxQueuedBytes int64
	// WriteTimeout closes a connection whose writes make no progress for
	// this long: a client that stopped reading while it keeps answering
	// pings (10s). Negative means no limit.
	WriteTimeout time.Duration

	// MaxPendingEvents and MaxPendingBytes bound the events read from one
	// connection (all its namespaces) that wait to be handled, in number
	// (256) and in bytes of arguments (MaxHTTPBufferSize). When either is
	// reached, the client is no longer read until half of them have been
	// handled: a websocket is left unread, so TCP holds the client back,
	// and a polling POST is answered once its packets have been taken.
	// A client that sends faster than its handlers run is slowed down,
	// not buffered. A handler that waits for an ack from its own client
	// while that client has this many events waiting waits until its
	// context ends: answer such events from a goroutine of their own.
	MaxPendingEvents int
	MaxPendingBytes  int64
	// MaxHeaderBytes bounds the request line and headers of every request
	// the hub serves (16 KiB, the official server's limit); larger ones are
	// answered 431 Request Header Fields Too Large. Negative means no
	// limit. http.Server.MaxHeaderBytes bounds what is read before that.
	MaxHeaderBytes int

	// Transports lists the enabled transports, TransportPolling and
	// TransportWebSocket; nil enables both.
	Transports []string
	// DisableUpgrades keeps clients that started on polling on polling.
	DisableUpgrades bool
	// Cookie, when set, names a cookie sent with each handshake response,
	// holding the session id, for sticky load balancing. Its Value is
	// ignored. The official server's equivalent is
	// &http.Cookie{Name: "io", Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}.
	Cookie *http.Cookie

	// AllowedOrigins lists the origins, besides the server's own host, from
	// which browser pages may connect, on both transports: host patterns
	// matched with path.Match ("example.com", "*.example.com", "localhost:*")
	// or "scheme://host" patterns. Handshakes from other origins are refused
	// (403 Forbidden; 400 for websockets, as the official server answers);
	// allowed cross-origin polling requests get CORS headers. Requests
	// without an Origin header (Node programs, other non-browser clients)
	// are not concerned.
	//
	// The single pattern "*" allows every origin. Do not use it unless
	// something else authenticates the handshake: any web page a user
	// visits could then connect with that user's cookies.
	AllowedOrigins []string
	// AllowCredentials lets cross-origin pages send cookies on polling
	// requests (Access-Control-Allow-Credentials, for clients created with
	// withCredentials: true, as sticky sessions with Cookie need).
	AllowCredentials bool
	// Compression enables permessage-deflate on websockets when the client
	// offers it. The official server leaves it off.
	Compression bool
	// AllowEIO3 accepts Socket.IO v2 clients (socket.io-client 2.x:
	// Engine.IO 3, Socket.IO protocol v4) next to current ones, as Node's
	// allowEIO3: true. Without it their handshakes are refused with 400
	// {"code":5,"message":"Unsupported protocol version"}. They share
	// namespaces, rooms and broadcasts with the others and use the hub's
	// Parser. As Node has it for them, a v2 client is connected to the
	// main namespace as soon as its session opens (its middleware runs
	// then, with an empty auth); a CONNECT to another namespace carries
	// the client's query, which becomes the socket's Handshake().Auth as
	// a JSON object of strings; a socket's ID is the engine session's id,
	// preceded by the namespace and "#" outside the main one (the client
	// computes it so: whoever learns such an ID while the connection lasts
	// holds its sid, so do not show v2 clients' IDs to others); a refusal
	// sends the ConnectError's Data, or the error's message, alone. The
	// client pings and the server answers: PingInterval+PingTimeout
	// without a ping from it closes the connection.
	AllowEIO3 bool
	// AllowRequest, when set, vets each handshake request; returning an
	// error refuses it (HTTP 403 with the error's text). Handshake
	// middleware wrapped around the Hub is the other way to do this.
	AllowRequest func(r *http.Request) error

	// Adapter, when set, creates the adapter of each namespace from its
	// LocalAdapter, to share rooms and broadcasts with other servers (see
	// the redisadapter module). nil keeps every namespace on this server.
	// It is called while the hub creates the namespace, under the hub's
	// lock: it must not block (subscribe in the background) nor call the
	// hub.
	Adapter func(local *LocalAdapter) Adapter
	// ConnectionStateRecovery, when set, lets clients whose connection was
	// lost recover their sockets (id, rooms, data) and the events they
	// missed (Node's connectionStateRecovery); see Recovery. nil leaves it
	// off, as in Node.
	ConnectionStateRecovery *Recovery
	// CleanupEmptyChildNamespaces removes a child namespace (see
	// OfMatch) once its last socket has left, with its adapter; the next
	// CONNECT to its name creates it again (Node's
	// cleanupEmptyChildNamespaces).
	CleanupEmptyChildNamespaces bool

	// Logger receives the hub's diagnostics; nil means slog.Default().
	Logger *slog.Logger
	// OnError is called with errors raised while serving a socket: event
	// handlers that fail or panic, arguments that cannot be decoded,
	// malformed packets. It is called from the socket's goroutine.
	// OnError receives every error, not rate-limited, with all its details
	// (errors.As reaches the decoder's error of an argument, which may quote
	// the input): bound what you log. When nil, errors are logged at
	// warning level with their text cut to 512 bytes, at most 5 lines per
	// socket at once and then one a second (errors without a socket share
	// one such budget per hub); the next line logged after suppressed ones
	// says how many in a "suppressed" attribute.
	OnError func(s *Socket, err error)

	// GenerateID, when set, returns the engine session id (sid) of each
	// handshake request, in place of the default: 20 URL-safe characters
	// from crypto/rand. It is Node's engine.generateId (io.engine.generateId
	// = (req) => …), and like it changes the engine's id only: socket ids
	// (Socket.ID) stay random and separate, as Socket.IO v5 has them (but
	// for v2 clients: see AllowEIO3). It is
	// called concurrently, once for each handshake that passed the other
	// checks (origin, AllowRequest, protocol version), before anything is
	// sent, on both transports (Node calls it after the 101 of a client
	// that starts on websocket).
	//
	// Whoever knows a session's sid can send and receive as its client
	// (that is how polling works): return ids nobody can guess, as
	// uuid.NewString does. An empty id, one that is not valid UTF-8, or
	// the id of a session that is still open refuses the handshake with
	// 400 {"code":3,"message":"Bad request"} (text "Bad request" on a
	// websocket, never upgraded), as Node answers a generateId that
	// throws, and reports why to OnError (with a nil socket) or the
	// default error log, without the id. Node takes any id: an empty one
	// leaves its session unreachable, a duplicate replaces the other
	// session in its table.
	GenerateID func(r *http.Request) string
	// InitialHeaders, when set, may change the header of each handshake
	// response before it is written: the polling response that carries
	// the open packet (with the Cookie, when set), and the 101 Switching
	// Protocols of a client that starts on websocket. It is Node's
	// io.engine.on("initial_headers", (headers, req) => …), and runs
	// before Headers, as there. h holds what rally set (Content-Type,
	// Cache-Control, CORS headers…); the Upgrade, Connection and
	// Sec-WebSocket-* headers of a 101 are set after it and cannot be
	// changed. r is the handshake request.
	InitialHeaders func(h http.Header, r *http.Request)
	// Headers, when set, may change the header of every successful engine
	// response before it is written: handshakes (after InitialHeaders),
	// polling GETs and POSTs, and the 101 of every websocket, those that
	// upgrade a polling session included. It is Node's
	// io.engine.on("headers", (headers, req) => …). As there, responses
	// that refuse a request (see OnConnectionError) and other errors are
	// not concerned, except a websocket request that fails the websocket
	// handshake itself (such as one without a valid Sec-WebSocket-Key),
	// whose 400 is written with the headers set for its 101. Both hooks
	// run on the goroutine of the request being answered, concurrently
	// with other requests.
	Headers func(h http.Header, r *http.Request)
	// OnConnectionError, when set, is called for every engine request the
	// hub refuses, before the response is written, with the request, the
	// error code the client gets and the code's message: 0 "Transport
	// unknown", 1 "Session ID unknown", 2 "Bad handshake method", 3 "Bad
	// request", 4 "Forbidden", 5 "Unsupported protocol version". It is
	// Node's io.engine.on("connection_error", (err) => …) with err.req,
	// err.code and err.message; err.context has no equivalent. As in
	// Node, message is the code's own also when the client is answered
	// AllowRequest's error text instead. Besides Node's cases, rally
	// refuses requests from origins that AllowedOrigins does not allow
	// (4, CORS preflights included) and handshakes during Shutdown (3).
	// It runs on the refused request's goroutine, concurrently with
	// other requests.
	OnConnectionError func(r *http.Request, code int, message string)

	// Parser is the wire format of packets, Node's parser option: nil for
	// the official default, msgpackparser.Parser{} for
	// socket.io-msgpack-parser. Clients must use the same one.
	Parser Parser
}

// Hub is a Socket.IO server. It is an http.Handler: mount it where clients
// connect, by default at "/socket.io/". The Hub's event, middleware and
// emit methods apply to the main namespace "/"; Of returns the others.
type Hub struct {
	opts     Options
	recovery *Recovery // Options.ConnectionStateRecovery with defaults, or nil
	engine   *engineio.Server
	log      *slog.Logger
	main     *Namespace
	codec    parser.Codec // of Options.Parser

	mu         sync.RWMutex
	namespaces map[string]*Namespace
	parents    []*Namespace // OfMatch, in the order created
	conns      map[*conn]struct{}
	closing    bool
	drained    chan struct{} // closed when conns empties while closing

	workers tracker      // socket dispatch goroutines
	pool    *gopool.Pool // on which they run
	// startDispatch and dispatchDone start and end a socket's dispatch
	// goroutine; kept as values so that sockets share them.
	startDispatch func(drain func())
	dispatchDone  func()

	errLimit errorLimiter // the default error log's budget for errors without a socket

	obs observerList
}

// tracker counts running goroutines and lets one wait, with a deadline,
// until none runs.
type tracker struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // made by a Wait, closed when n drops to 0
}

func (t *tracker) Add(delta int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n += delta
	if t.n == 0 && t.idle != nil {
		close(t.idle)
		t.idle = nil
	}
}

func (t *tracker) Done() { t.Add(-1) }

// Wait waits until no goroutine runs or ctx ends.
func (t *tracker) Wait(ctx context.Context) error {
	t.mu.Lock()
	if t.n == 0 {
		t.mu.Unlock()
		return nil
	}
	if t.idle == nil {
		t.idle = make(chan struct{})
	}
	idle := t.idle
	t.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// NewHub returns a Hub with the given options; nil means all defaults.
func NewHub(opts *Options) *Hub { return newHub(opts, false) }

// newHub is NewHub; with noPoller every websocket is read by a goroutine
// of its own, as where epoll is not available (tests run both modes).
func newHub(opts *Options, noPoller bool) *Hub {
	h := &Hub{namespaces: make(map[string]*Namespace), conns: make(map[*conn]struct{}), pool: gopool.New(5 * time.Second)}
	if opts != nil {
		h.opts = *opts
	}
	h.startDispatch = func(drain func()) {
		h.workers.Add(1)
		h.pool.Go(drain)
	}
	h.dispatchDone = h.workers.Done
	if h.opts.ConnectTimeout <= 0 {
		h.opts.ConnectTimeout = 45 * time.Second
	}
	if h.opts.MaxHTTPBufferSize <= 0 {
		h.opts.MaxHTTPBufferSize = 1e6
	}
	if h.opts.MaxPendingEvents <= 0 {
		h.opts.MaxPendingEvents = 256
	}
	if h.opts.MaxPendingBytes <= 0 {
		h.opts.MaxPendingBytes = h.opts.MaxHTTPBufferSize
	}
	if r := h.opts.ConnectionStateRecovery; r != nil {
		h.recovery = r.withDefaults()
	}
	h.codec = codecOf(h.opts.Parser)
	h.log = h.opts.Logger
	if h.log == nil {
		h.log = slog.Default()
	}
	h.engine = engineio.NewServer(engineio.Options{
		PingInterval:     h.opts.PingInterval,
		PingTimeout:      h.opts.PingTimeout,
		UpgradeTimeout:   h.opts.UpgradeTimeout,
		MaxPayload:       h.opts.MaxHTTPBufferSize,
		MaxQueuedBytes:   h.opts.MaxQueuedBytes,
		WriteTimeout:     h.opts.WriteTimeout,
		MaxHeaderBytes:   h.opts.MaxHeaderBytes,
		Transports:       h.opts.Transports,
		DisableUpgrades:  h.opts.DisableUpgrades,
		Cookie:           h.opts.Cookie,
		AllowedOrigins:   h.opts.AllowedOrigins,
		AllowCredentials: h.opts.AllowCredentials,
		Compression:      h.opts.Compression,
		AllowRequest:     h.opts.AllowRequest,
		AllowEIO3:        h.opts.AllowEIO3,
		NoPoller:         noPoller,
		NewSession:       h.newConn,

		// The engine hooks; their misuse is reported as errors without
		// a socket.
		GenerateID:        h.opts.GenerateID,
		InitialHeaders:    h.opts.InitialHeaders,
		Headers:           h.opts.Headers,
		OnConnectionError: h.connectionRefused,
		OnPacketOut:       h.notePacketOut,
		ReportError:       func(err error) { h.reportError(nil, err) },
	})
	h.main = h.Of("/")
	return h
}

// Of returns the namespace with the given name, creating it on first use.
// Names start with "/"; one is added when missing, and "" is the main
// namespace. Clients can only connect to namespaces created this way;
// others are refused with "Invalid namespace".
func (h *Hub) Of(name string) *Namespace {
	name = normalizeNamespace(name)
	h.mu.RLock()
	n := h.namespaces[name]
	h.mu.RUnlock()
	if n != nil {
		return n
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if n = h.namespaces[name]; n == nil {
		n = newNamespace(h, name)
		h.namespaces[name] = n
		h.noteNamespaceCreated(n)
	}
	return n
}

// connectionRefused is the engine's OnConnectionError hook.
func (h *Hub) connectionRefused(r *http.Request, code int, message string) {
	if f := h.opts.OnConnectionError; f != nil {
		f(r, code, message)
	}
	h.noteConnectionRefused(code, message)
}

func normalizeNamespace(name string) string {
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	return name
}

// namespace returns an existing namespace, or nil.
func (h *Hub) namespace(name string) *Namespace {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.namespaces[name]
}

// On registers the handler of an event on the main namespace. See
// Namespace.On.
func (h *Hub) On(event string, handler any) { h.main.On(event, handler) }

// Off removes the main namespace's handler of event. See Namespace.Off.
func (h *Hub) Off(event string) { h.main.Off(event) }

// Use adds connect middleware to the main namespace. See Namespace.Use.
func (h *Hub) Use(mw ConnectMiddleware) { h.main.Use(mw) }

// OnConnect registers a function called for each socket that connects to
// the main namespace. See Namespace.OnConnect.
func (h *Hub) OnConnect(fn func(s *Socket)) { h.main.OnConnect(fn) }

// OnDisconnect registers a function called when a socket of the main
// namespace disconnects. See Namespace.OnDisconnect.
func (h *Hub) OnDisconnect(fn func(s *Socket, reason string)) { h.main.OnDisconnect(fn) }

// Emit sends an event to every socket of the main namespace (io.emit).
func (h *Hub) Emit(event string, args ...any) error { return h.main.Emit(event, args...) }

// EmitWithAck sends an event to every socket of the main namespace and
// collects their acknowledgements. See Broadcast.EmitWithAck.
func (h *Hub) EmitWithAck(ctx context.Context, event string, args ...any) ([]Reply, error) {
	return h.main.EmitWithAck(ctx, event, args...)
}

// ServerSideEmit sends an event to the other servers' OnServerEvent
// handlers of the main namespace. See Namespace.ServerSideEmit.
func (h *Hub) ServerSideEmit(ctx context.Context, event string, args ...any) error {
	return h.main.ServerSideEmit(ctx, event, args...)
}

// ServerSideEmitWithAck sends an event to the other servers and collects
// their answers. See Namespace.ServerSideEmitWithAck.
func (h *Hub) ServerSideEmitWithAck(ctx context.Context, event string, args ...any) ([]Reply, error) {
	return h.main.ServerSideEmitWithAck(ctx, event, args...)
}

// OnServerEvent registers the handler of an event other servers send to
// the main namespace. See Namespace.OnServerEvent.
func (h *Hub) OnServerEvent(event string, handler any) { h.main.OnServerEvent(event, handler) }

// Send emits the "message" event to every socket of the main namespace.
func (h *Hub) Send(args ...any) error { return h.main.Send(args...) }

// To selects the sockets of the main namespace in any of the rooms.
func (h *Hub) To(rooms ...string) Broadcast { return h.main.To(rooms...) }

// In is the same as To.
func (h *Hub) In(rooms ...string) Broadcast { return h.main.In(rooms...) }

// Except selects the sockets of the main namespace in none of the rooms.
func (h *Hub) Except(rooms ...string) Broadcast { return h.main.Except(rooms...) }

// All selects every socket of the main namespace.
func (h *Hub) All() Broadcast { return h.main.All() }

// Shutdown gracefully stops the hub: new handshakes are refused, every
// socket is disconnected with reason "server shutting down" (clients see
// the transport close and reconnect elsewhere), pending acknowledgements
// fail, and what is queued for each client is written until ctx ends.
// Connections still open then are closed at once. It returns ctx.Err() if
// ctx ended first.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
	} else {
		h.closing = true
		h.drained = make(chan struct{})
		conns := make([]*conn, 0, len(h.conns))
		for c := range h.conns {
			conns = append(conns, c)
		}
		if len(h.conns) == 0 {
			close(h.drained)
		}
		h.mu.Unlock()
		graceful := ctx.Err() == nil
		for _, c := range conns {
			c.shutdown(graceful)
		}
	}
	var err error
	select {
	case <-h.drained:
	case <-ctx.Done():
		err = ctx.Err()
	}
	h.engine.Close(ReasonServerShuttingDown)
	if werr := h.workers.Wait(ctx); err == nil {
		err = werr
	}
	h.pool.Close(time.Second)
	h.mu.RLock()
	namespaces := make([]*Namespace, 0, len(h.namespaces))
	for _, n := range h.namespaces {
		namespaces = append(namespaces, n)
	}
	h.mu.RUnlock()
	for _, n := range namespaces {
		if cerr := n.adapter.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("rally: closing the adapter of %s: %w", n.name, cerr)
		}
	}
	return err
}

// Close stops the hub at once: like Shutdown with a context that has
// already ended, without the error.
func (h *Hub) Close() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h.Shutdown(ctx)
}

func (h *Hub) addConn(c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.conns[c] = struct{}{}
	return true
}

func (h *Hub) removeConn(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.conns[c]; !ok {
		return
	}
	delete(h.conns, c)
	if h.closing && len(h.conns) == 0 {
		close(h.drained)
	}
}
