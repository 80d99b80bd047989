package engineio

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rallyhq/rally/internal/gopool"
)

// Transport names as they appear in the transport query parameter.
const (
	TransportPolling   = "polling"
	TransportWebSocket = "websocket"
)

// Options configures a Server. Zero durations and sizes take the official
// server's defaults.
type Options struct {
	PingInterval   time.Duration // default 25s
	PingTimeout    time.Duration // default 20s
	UpgradeTimeout time.Duration // default 10s
	MaxPayload     int64         // bytes, default 1e6

	// MaxQueuedBytes bounds what may wait to be written to one client,
	// the write in progress included; a client that falls further behind
	// is disconnected (ReasonQueueFull). Zero means 16 times MaxPayload;
	// negative means no limit.
	MaxQueuedBytes int64
	// WriteTimeout fails a write to a client that makes no progress for
	// this long (a websocket write, or a 64 KiB part of a poll response);
	// the session is then closed. Zero means 10s; negative means no limit.
	WriteTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers of every engine
	// request; larger requests are answered 431, as the official server's
	// HTTP parser does. Zero means 16 KiB; negative means no limit.
	MaxHeaderBytes int

	// Transports lists the enabled transports; nil enables both.
	Transports []string
	// DisableUpgrades keeps polling sessions on polling.
	DisableUpgrades bool

	// Cookie, when set, is sent with every handshake response with its
	// Value set to the session id (for sticky load balancing).
	Cookie *http.Cookie

	// AllowedOrigins lists the origins, besides the server's own host,
	// that browsers may connect from: host patterns ("*.example.com") or
	// scheme://host patterns, matched with path.Match; "*" allows all.
	// Handshakes and upgrades from other origins are refused (Forbidden);
	// allowed cross-origin requests get CORS headers.
	AllowedOrigins []string
	// AllowCredentials adds Access-Control-Allow-Credentials to CORS
	// responses, for clients that send cookies (withCredentials).
	AllowCredentials bool

	// Compression offers permessage-deflate on websockets.
	Compression bool
	// NoPoller reads every websocket on a goroutine of its own instead of
	// the process-wide epoll poller (tests run both modes).
	NoPoller bool

	// AllowEIO3 accepts Engine.IO 3 clients (Socket.IO v2), as the
	// official server's allowEIO3: their handshakes (EIO=3, or no EIO at
	// all) are otherwise refused with code 5.
	AllowEIO3 bool

	// AllowRequest, when set, vets every handshake request. A non-nil error
	// refuses it with code 4 (Forbidden) and the error's text.
	AllowRequest func(r *http.Request) error

	// GenerateID, when set, returns the id (sid) of the session a handshake
	// request opens, in place of NewID. It is called concurrently, before
	// NewSession. The handshake is refused (Bad request, code 3) when the
	// id is empty, is not valid UTF-8 or is the id of an open session;
	// ReportError is then told why.
	GenerateID func(r *http.Request) string
	// InitialHeaders, when set, may change the header of the response to a
	// handshake, on either transport, before it is written: the polling
	// response that carries the open packet, or the 101 of a websocket
	// handshake. Headers runs after it.
	InitialHeaders func(h http.Header, r *http.Request)
	// Headers, when set, may change the header of every successful engine
	// response before it is written: the handshake, each poll and POST
	// answered 200 and each websocket 101, upgrades included. Error
	// responses are not concerned, but for a request that then fails the
	// websocket handshake itself (ws.Accept answers it with w's headers).
	Headers func(h http.Header, r *http.Request)
	// OnConnectionError, when set, is called for every request refused
	// with an engine error, before the response is written, with its code
	// and the code's message (0 "Transport unknown", 1 "Session ID
	// unknown", 2 "Bad handshake method", 3 "Bad request", 4 "Forbidden",
	// 5 "Unsupported protocol version").
	OnConnectionError func(r *http.Request, code int, message string)
	// OnPacketOut, when set, is called with the size of every message
	// queued for a client, under the session's lock.
	OnPacketOut func(size int)
	// ReportError, when set, receives the errors of the hooks above that
	// are the server's configuration's, not the client's: an unusable id
	// from GenerateID. They never hold the id.
	ReportError func(err error)

	// NewSession is called for every new session with its handshake
	// request, before anything is sent, and returns the handler of its
	// messages, or nil to refuse the handshake. The session keeps nothing
	// of the request but its context's values: NewSession takes what else
	// it needs. Required.
	NewSession func(s *Session, r *http.Request) Handler
}

func (o *Options) setDefaults() {
	if o.PingInterval <= 0 {
		o.PingInterval = 25 * time.Second
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = 20 * time.Second
	}
	if o.UpgradeTimeout <= 0 {
		o.UpgradeTimeout = 10 * time.Second
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = 1e6
	}
	if o.MaxQueuedBytes == 0 {
		o.MaxQueuedBytes = 16 * o.MaxPayload
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 10 * time.Second
	} else if o.WriteTimeout < 0 {
		o.WriteTimeout = 0
	}
	if o.MaxHeaderBytes == 0 {
		o.MaxHeaderBytes = 16 << 10
	}
	if o.Transports == nil {
		o.Transports = []string{TransportPolling, TransportWebSocket}
	}
}

// Server serves Engine.IO requests. It is an http.Handler.
type Server struct {
	opts    Options
	origins originPolicy
	pool    *gopool.Pool // websocket writers

	mu       sync.RWMutex
	sessions map[string]*Session
	closed   bool
	wg       sync.WaitGroup // running session goroutines
}

// NewServer returns a server with the given options.
func NewServer(opts Options) *Server {
	opts.setDefaults()
	if opts.NewSession == nil {
		panic("engineio: Options.NewSession is nil")
	}
	return &Server{
		opts:     opts,
		origins:  newOriginPolicy(opts.AllowedOrigins, opts.AllowCredentials),
		pool:     gopool.New(5 * time.Second),
		sessions: make(map[string]*Session),
	}
}

// Options returns the server's options, defaults applied.
func (srv *Server) Options() Options { return srv.opts }

func (srv *Server) enabled(transport string) bool {
	for _, t := range srv.opts.Transports {
		if t == transport {
			return true
		}
	}
	return false
}

func (srv *Server) session(sid string) *Session {
	srv.mu.RLock()
	defer srv.mu.RUnlock()
	return srv.sessions[sid]
}

func (srv *Server) remove(s *Session) {
	srv.mu.Lock()
	if srv.sessions[s.id] == s {
		delete(srv.sessions, s.id)
	}
	srv.mu.Unlock()
}

// SessionCount returns the number of open sessions.
func (srv *Server) SessionCount() int {
	srv.mu.RLock()
	defer srv.mu.RUnlock()
	return len(srv.sessions)
}

// isUpgrade reports whether r asks for a websocket upgrade.
func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// ServeHTTP routes an Engine.IO request: handshake, polling GET and POST, or
// websocket upgrade.
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if limit := srv.opts.MaxHeaderBytes; limit > 0 && headerBytes(r) > limit {
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusRequestHeaderFieldsTooLarge)
		return
	}
	q := r.URL.Query()
	transport := q.Get("transport")
	upgrade := isUpgrade(r)
	fail := func(e *requestError, message string) { srv.refuse(w, r, e, message) }

	originOK := srv.origins.allowed(r)
	if originOK {
		srv.origins.setCORS(w, r)
	}
	if r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != "" {
		if originOK {
			srv.origins.preflight(w, r)
		} else {
			fail(errForbidden, errForbidden.message)
		}
		return
	}

	if !srv.enabled(transport) {
		fail(errTransportUnknown, errTransportUnknown.message)
		return
	}

	if sid := q.Get("sid"); sid != "" {
		if !originOK {
			// Every request of a session is checked, not only the
			// handshake: a page of another origin that learnt a sid
			// gets nothing, and the session is not disturbed.
			fail(errForbidden, errForbidden.message)
			return
		}
		s := srv.session(sid)
		if s == nil {
			fail(errSessionUnknown, errSessionUnknown.message)
			return
		}
		if protocolOf(q) != s.protocol {
			// As in the official server: a session keeps its revision.
			fail(errBadRequest, errBadRequest.message)
			return
		}
		if transport == TransportWebSocket && upgrade {
			srv.serveUpgrade(w, r, s)
			return
		}
		if transport != s.Transport() || transport != TransportPolling {
			fail(errBadRequest, errBadRequest.message)
			return
		}
		s.servePolling(w, r)
		return
	}

	if r.Method != http.MethodGet {
		fail(errBadHandshakeMethod, errBadHandshakeMethod.message)
		return
	}
	if transport == TransportWebSocket && !upgrade {
		fail(errBadRequest, errBadRequest.message)
		return
	}
	if !originOK {
		fail(errForbidden, errForbidden.message)
		return
	}
	if srv.opts.AllowRequest != nil {
		if err := srv.opts.AllowRequest(r); err != nil {
			msg := err.Error()
			if msg == "" {
				msg = errForbidden.message
			}
			fail(errForbidden, msg)
			return
		}
	}
	if protocolOf(q) == Protocol3 && !srv.opts.AllowEIO3 {
		fail(errUnsupportedVersion, errUnsupportedVersion.message)
		return
	}
	if transport == TransportWebSocket {
		srv.handshakeWebSocket(w, r)
	} else {
		srv.handshakePolling(w, r)
	}
}

// refuse answers r with the engine error e and the given message (the
// error's own, or AllowRequest's), after telling OnConnectionError. An
// upgrade request is answered as one, before any upgrade.
func (srv *Server) refuse(w http.ResponseWriter, r *http.Request, e *requestError, message string) {
	if f := srv.opts.OnConnectionError; f != nil {
		f(r, e.code, e.message)
	}
	if isUpgrade(r) {
		e.writeUpgrade(w, message)
	} else {
		e.writeHTTP(w, message)
	}
}

// setHeaders runs the header hooks on h, the header of a successful
// response to r about to be written; initial marks the response to a
// handshake. As in the official server, InitialHeaders runs first.
func (srv *Server) setHeaders(h http.Header, r *http.Request, initial bool) {
	if initial && srv.opts.InitialHeaders != nil {
		srv.opts.InitialHeaders(h, r)
	}
	if srv.opts.Headers != nil {
		srv.opts.Headers(h, r)
	}
}

// Errors of GenerateID, for ReportError. None holds the id, which is a
// secret of its client's.
var (
	errIDEmpty   = errors.New("engine.io: handshake refused: GenerateID returned an empty id")
	errIDInvalid = errors.New("engine.io: handshake refused: GenerateID returned an id that is not valid UTF-8")
	errIDInUse   = errors.New("engine.io: handshake refused: GenerateID returned the id of an open session")
)

// generateID returns the id of a new session: GenerateID's, or NewID's.
func (srv *Server) generateID(r *http.Request) (string, error) {
	if srv.opts.GenerateID == nil {
		return NewID(), nil
	}
	id := srv.opts.GenerateID(r)
	switch {
	case id == "":
		return "", errIDEmpty
	case !utf8.ValidString(id):
		return "", errIDInvalid
	}
	return id, nil
}

// reportError hands err to ReportError.
func (srv *Server) reportError(err error) {
	if srv.opts.ReportError != nil {
		srv.opts.ReportError(err)
	}
}

// register creates a session for the handshake request r and adds it to the
// server, before anything is sent. It returns nil when the handshake is
// refused: the id from GenerateID is unusable, NewSession refused it or the
// server is closed.
func (srv *Server) register(r *http.Request, transport string) *Session {
	id, err := srv.generateID(r)
	if err != nil {
		srv.reportError(err)
		return nil
	}
	s := newSession(srv, r, transport, id)
	if s.handler = srv.opts.NewSession(s, r); s.handler == nil {
		s.cancel()
		return nil
	}
	srv.mu.Lock()
	closed := srv.closed
	_, inUse := srv.sessions[id]
	if !closed && !inUse {
		srv.sessions[id] = s
	}
	srv.mu.Unlock()
	if closed || inUse {
		if inUse && !closed {
			srv.reportError(errIDInUse)
		}
		// The session was not added: its handler learns that it ended,
		// and the open session of that id is left alone.
		s.Abort(ReasonForcedClose)
		return nil
	}
	return s
}

// headerBytes is the size of r's request line and header fields as they
// came on the wire, give or take the spaces around values.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
	n += len("Host: ") + len(r.Host) + 2
	for name, values := range r.Header {
		for _, v := range values {
			n += len(name) + 2 + len(v) + 2
		}
	}
	return n
}

// setCookie adds the configured session cookie to a handshake response.
func (srv *Server) setCookie(w http.ResponseWriter, sid string) {
	if srv.opts.Cookie == nil {
		return
	}
	c := *srv.opts.Cookie
	c.Value = sid
	http.SetCookie(w, &c)
}

// ErrServerClosed is returned for operations on a closed server.
var ErrServerClosed = errors.New("engine.io: server closed")

// Close closes every session at once, discarding what they have queued, with
// the given reason, and refuses new handshakes. It waits for the session
// goroutines to end.
func (srv *Server) Close(reason string) {
	srv.mu.Lock()
	srv.closed = true
	sessions := make([]*Session, 0, len(srv.sessions))
	for _, s := range srv.sessions {
		sessions = append(sessions, s)
	}
	srv.mu.Unlock()
	for _, s := range sessions {
		s.Abort(reason)
	}
	srv.wg.Wait()
	srv.pool.Close(time.Second)
}

// NewID returns a random 20-character identifier in the official server's
// format: 15 bytes from a cryptographic source in URL-safe base64.
func NewID() string {
	var b [15]byte
	rand.Read(b[:]) // never fails (crypto/rand panics on failure)
	return base64.RawURLEncoding.EncodeToString(b[:])
}
