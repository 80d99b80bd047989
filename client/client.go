// Package client is a Socket.IO v5 client for rally and any other
// Socket.IO server: websocket and HTTP long-polling transports (polling
// first, then upgraded to websocket, as the official client does), typed
// event handlers, acknowledgements both ways, binary attachments and
// namespaces multiplexed over one connection.
//
//	s := client.New("http://localhost:3000", nil)
//	s.On("greetings", func(text string, data map[string]string, b []byte) {})
//	if err := s.Connect(ctx); err != nil { ... }
//	s.Emit("salutations", "Hello!", map[string]string{"mr": "john"}, []byte{1, 2, 3, 4})
//
// Like the official client, it reconnects by itself when a connection that
// was established is lost (the transport closed or failed, or the server
// stopped answering pings), with a randomized exponential backoff (see the
// Reconnection fields of Options), and joins every namespace again; emits
// made meanwhile wait in a bounded buffer and are sent once the namespace
// is joined again. A socket that the application disconnects, or that the
// server disconnects from its namespace, does not reconnect. When the
// server has connection state recovery on, a reconnected socket gets its
// id back with the events it missed (see Socket.Recovered).
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/internal/engineio"
	"github.com/rallyhq/rally/internal/parser"
	"github.com/rallyhq/rally/internal/serial"
)

// Transport names, for Options.Transports.
const (
	TransportPolling   = engineio.TransportPolling
	TransportWebSocket = engineio.TransportWebSocket
)

// Options configures a connection. The zero value connects like the
// official client with default options, reconnection included.
type Options struct {
	// Auth is sent with the CONNECT packet of each namespace (the auth
	// option of the official client), again on each reconnection; it must
	// encode as a JSON object.
	Auth any
	// Transports lists the transports to use, in order: the first opens the
	// connection and the session upgrades to websocket when it is listed
	// too. nil means polling, then websocket.
	Transports []string
	// Path is the server's Engine.IO path; "/socket.io/" when empty.
	Path string
	// Query holds parameters added to every request.
	Query url.Values
	// Header holds headers added to every request.
	Header http.Header
	// HTTPClient makes the requests; http.DefaultClient when nil.
	HTTPClient *http.Client

	// DisableReconnection turns automatic reconnection off (the official
	// client's reconnection: false): a lost connection then ends every
	// socket on it.
	DisableReconnection bool
	// ReconnectionAttempts is how many attempts in a row are made to
	// reconnect before giving up (Manager.OnReconnectFailed; the sockets
	// waiting then end). 0 means no limit, the official default (Infinity).
	ReconnectionAttempts int
	// ReconnectionDelay is the delay before the first attempt; each
	// attempt after it waits twice as long as the one before, up to
	// ReconnectionDelayMax. 0 means 1 second, the official default.
	ReconnectionDelay time.Duration
	// ReconnectionDelayMax caps the delay between attempts. 0 means 5
	// seconds, the official default.
	ReconnectionDelayMax time.Duration
	// RandomizationFactor moves each delay up or down by a random part of
	// itself of at most this fraction, so that clients cut off together do
	// not come back together: with 0.5, a delay of 1 s is anything from 0.5
	// to 1.5 s. 0 means 0.5, the official default; NoRandomization (any
	// negative value) keeps the delays exact, and so, as in the official
	// client, does a factor above 1.
	RandomizationFactor float64

	// MaxBufferedEmits bounds how many emits (EmitWithAck included) a
	// socket keeps while it is connecting or waiting for a reconnection,
	// to send them, in order, once it is connected (the official client's
	// sendBuffer, which has no bound). Past it, Emit and EmitWithAck fail
	// with ErrBufferFull and nothing is kept. 0 means 1000; a negative
	// value keeps nothing: emitting on a socket that is not connected
	// fails with ErrNotConnected.
	MaxBufferedEmits int

	// Parser is the wire format of packets, the official client's parser
	// option: nil for the default, msgpackparser.Parser{} for
	// socket.io-msgpack-parser. It must be the server's.
	Parser rally.Parser
}

// defaultMaxBufferedEmits is Options.MaxBufferedEmits when zero.
const defaultMaxBufferedEmits = 1000

// reconnectTimeout bounds one reconnection attempt's handshake, as the
// official Manager's timeout option (20 s) does.
const reconnectTimeout = 20 * time.Second

func (o *Options) transports() []string {
	if len(o.Transports) == 0 {
		return []string{TransportPolling, TransportWebSocket}
	}
	return o.Transports
}

func (o *Options) maxBufferedEmits() int {
	if o.MaxBufferedEmits == 0 {
		return defaultMaxBufferedEmits
	}
	return max(o.MaxBufferedEmits, 0)
}

// Manager is one connection to a server, shared by the sockets of several
// namespaces (the Manager of the official client). It opens the
// connection when a socket connects, reopens it after it is lost while
// sockets use it, and closes it when the last socket disconnects.
type Manager struct {
	base *url.URL
	opts Options

	opening chan struct{} // a token, held while Connect opens a connection

	mu           sync.Mutex
	cur          *session           // the open connection, or nil
	socks        map[string]*Socket // sockets connecting, connected or waiting to reconnect
	reconnecting bool               // a reconnection loop runs
	stopLoop     context.CancelFunc // ends that loop
	loops        sync.WaitGroup
	backoff      backoff
	listeners    managerListeners

	events serial.Queue // the manager's listeners, in order
}

// managerListeners are the functions registered with the Manager's On
// methods.
type managerListeners struct {
	attempt   []func(attempt int)
	reconnect []func(attempt int)
	err       []func(err error)
	failed    []func()
}

// session is one Engine.IO connection of a manager.
type session struct {
	eng   *engine        // set before the session is made current, then fixed
	codec parser.Codec   // of Options.Parser
	dec   parser.Decoder // the codec's state, used by the engine's receiving side only
}

// send encodes p and queues it on the session's connection.
func (sess *session) send(p *parser.Packet) error {
	frames, err := sess.codec.Encode(p)
	if err != nil {
		return fmt.Errorf("rally/client: encoding a %s packet: %w", p.Type, err)
	}
	return sess.eng.send(frames...)
}

// NewManager returns a manager for the server at rawURL (http, https, ws
// or wss; the path is ignored: namespaces are chosen with Socket). It
// connects when a socket connects.
func NewManager(rawURL string, opts *Options) (*Manager, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("rally/client: %w", err)
	}
	m := &Manager{socks: make(map[string]*Socket), opening: make(chan struct{}, 1)}
	if opts != nil {
		m.opts = *opts
	}
	m.backoff = newBackoff(&m.opts)
	switch u.Scheme {
	case "ws", "http":
		u.Scheme = "http"
	case "wss", "https":
		u.Scheme = "https"
	default:
		return nil, fmt.Errorf("rally/client: unsupported URL scheme %q", u.Scheme)
	}
	path := m.opts.Path
	if path == "" {
		path = "/socket.io/"
	}
	q := u.Query()
	for k, v := range m.opts.Query {
		q[k] = v
	}
	m.base = &url.URL{Scheme: u.Scheme, Host: u.Host, Path: path, RawQuery: q.Encode()}
	return m, nil
}

// New returns a socket for the namespace named by rawURL's path ("/" when
// empty), on a connection of its own, like io(url) in the official client.
// Register handlers with On, then call Connect. An invalid URL makes every
// later Connect fail.
func New(rawURL string, opts *Options) *Socket {
	m, err := NewManager(rawURL, opts)
	if err != nil {
		return &Socket{err: err}
	}
	nsp := "/"
	if u, _ := url.Parse(rawURL); u != nil && u.Path != "" {
		nsp = u.Path
	}
	return m.Socket(nsp)
}

// Dial connects a socket like New and Connect, for code that registers no
// handler before connecting.
func Dial(ctx context.Context, rawURL string, opts *Options) (*Socket, error) {
	s := New(rawURL, opts)
	if err := s.Connect(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Socket returns a new socket for the namespace nsp on this connection. It
// connects with Connect.
func (m *Manager) Socket(nsp string) *Socket {
	if !strings.HasPrefix(nsp, "/") {
		nsp = "/" + nsp
	}
	return &Socket{m: m, nsp: nsp, auth: m.opts.Auth}
}

// Transport returns the connection's current transport, or "" when it is
// not open.
func (m *Manager) Transport() string {
	m.mu.Lock()
	sess := m.cur
	m.mu.Unlock()
	if sess == nil {
		return ""
	}
	return sess.eng.Transport()
}

// OnReconnectAttempt registers a function called before each reconnection
// attempt with its number, from 1 (the official reconnect_attempt event).
// The Manager's functions run one at a time, in order, on a goroutine of
// their own: they do not hold up the reconnection.
func (m *Manager) OnReconnectAttempt(fn func(attempt int)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.listeners.attempt = append(m.listeners.attempt, fn)
}

// OnReconnect registers a function called when an attempt has opened a
// new connection, with the number of attempts it took (the official
// reconnect event); the sockets then join their namespaces again, and each
// calls its OnConnect functions once joined.
func (m *Manager) OnReconnect(fn func(attempt int)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.listeners.reconnect = append(m.listeners.reconnect, fn)
}

// OnReconnectError registers a function called with the error of each
// failed reconnection attempt (the official reconnect_error event).
func (m *Manager) OnReconnectError(fn func(err error)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.listeners.err = append(m.listeners.err, fn)
}

// OnReconnectFailed registers a function called when
// Options.ReconnectionAttempts attempts in a row have failed (the official
// reconnect_failed event). The sockets that were waiting end then: their
// Done channels close.
func (m *Manager) OnReconnectFailed(fn func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.listeners.failed = append(m.listeners.failed, fn)
}

// fire runs call on the manager's listener goroutine.
func (m *Manager) fire(call func(l *managerListeners)) {
	m.mu.Lock()
	l := managerListeners{
		attempt:   m.listeners.attempt,
		reconnect: m.listeners.reconnect,
		err:       m.listeners.err,
		failed:    m.listeners.failed,
	}
	m.mu.Unlock()
	m.events.Push(func() { call(&l) })
}

// register records s as the socket of its namespace.
func (m *Manager) register(s *Socket) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.socks[s.nsp] != nil {
		return fmt.Errorf("rally/client: namespace %s already connected on this connection", s.nsp)
	}
	m.socks[s.nsp] = s
	return nil
}

// join sends the CONNECT of s on the open connection, opening one if there
// is none; while a reconnection runs, the reconnection will.
func (m *Manager) join(ctx context.Context, s *Socket) error {
	for {
		m.mu.Lock()
		sess, reconnecting := m.cur, m.reconnecting
		m.mu.Unlock()
		switch {
		case sess != nil:
			s.sendConnect(sess)
			return nil
		case reconnecting:
			return nil
		}
		select {
		case m.opening <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		m.mu.Lock()
		busy := m.cur != nil || m.reconnecting
		m.mu.Unlock()
		if busy {
			<-m.opening
			continue
		}
		sess, err := m.dial(ctx, nil)
		<-m.opening
		if err != nil {
			return err
		}
		m.joinAll(sess)
		return nil
	}
}

// dial opens a connection and makes it current, unless stop ended first.
func (m *Manager) dial(ctx context.Context, stop context.Context) (*session, error) {
	sess := &session{codec: parser.Text}
	if m.opts.Parser != nil {
		sess.codec = m.opts.Parser.Codec()
	}
	eng, err := openEngine(ctx, m.base, &m.opts,
		func(data []byte, binary bool) { m.onMessage(sess, data, binary) },
		func(reason string) { m.onClose(sess, reason) })
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	sess.eng = eng
	switch {
	case stop != nil && stop.Err() != nil:
		err = stop.Err()
	case eng.isClosed():
		// Its onClose was ignored: the session was not current yet.
		err = errors.New("rally/client: connection closed during the handshake")
	case stop != nil:
		// A reconnection succeeded.
		m.reconnecting = false
		m.stopLoop = nil
		m.backoff.reset()
		m.cur = sess
	default:
		m.cur = sess
	}
	m.mu.Unlock()
	if err != nil {
		eng.close(closeTimeout)
		return nil, err
	}
	return sess, nil
}

// joinAll sends the CONNECT of every socket waiting for one on sess, and
// closes sess if no socket is left to use it.
func (m *Manager) joinAll(sess *session) {
	m.mu.Lock()
	socks := m.socketsLocked()
	m.mu.Unlock()
	for _, s := range socks {
		s.sendConnect(sess)
	}
	m.mu.Lock()
	idle := len(m.socks) == 0 && m.cur == sess
	if idle {
		m.cur = nil
	}
	m.mu.Unlock()
	if idle {
		sess.eng.close(closeTimeout)
	}
}

func (m *Manager) socketsLocked() []*Socket {
	socks := make([]*Socket, 0, len(m.socks))
	for _, s := range m.socks {
		socks = append(socks, s)
	}
	return socks
}

// Close disconnects every socket and closes the connection; a socket that
// connects again later opens a new one.
func (m *Manager) Close() {
	m.mu.Lock()
	socks := m.socketsLocked()
	m.mu.Unlock()
	for _, s := range socks {
		s.disconnect(true, ReasonClientDisconnect)
	}
	m.mu.Lock()
	sess := m.cur
	m.cur = nil
	if m.stopLoop != nil {
		m.stopLoop()
		m.stopLoop = nil
		m.reconnecting = false
	}
	m.mu.Unlock()
	if sess != nil {
		sess.eng.close(closeTimeout)
	}
	m.loops.Wait()
}

// onMessage decodes a Socket.IO packet and routes it to its socket.
func (m *Manager) onMessage(sess *session, data []byte, binary bool) {
	m.mu.Lock()
	current := m.cur == sess
	m.mu.Unlock()
	if !current {
		return
	}
	p, err := sess.codec.Decode(&sess.dec, data, binary)
	if err != nil {
		sess.eng.abort(ReasonParseError)
		return
	}
	if p == nil {
		return
	}
	m.mu.Lock()
	s := m.socks[p.Namespace]
	m.mu.Unlock()
	if s == nil {
		return
	}
	switch p.Type {
	case parser.Connect:
		var reply struct {
			SID string `json:"sid"`
			PID string `json:"pid"`
		}
		if json.Unmarshal(p.Data, &reply) != nil || reply.SID == "" {
			s.refused(sess, &rally.ConnectError{Message: "the server's CONNECT reply has no sid"})
			return
		}
		s.connected(sess, reply.SID, reply.PID)
	case parser.ConnectError:
		ce := &rally.ConnectError{}
		var body struct {
			Message string          `json:"message"`
			Data    json.RawMessage `json:"data"`
		}
		if json.Unmarshal(p.Data, &body) == nil {
			ce.Message = body.Message
			if body.Data != nil {
				ce.Data = body.Data
			}
		} else {
			json.Unmarshal(p.Data, &ce.Message)
		}
		s.refused(sess, ce)
	case parser.Event, parser.BinaryEvent:
		s.received(p)
	case parser.Ack, parser.BinaryAck:
		s.resolveAck(p)
	case parser.Disconnect:
		s.disconnect(false, ReasonServerDisconnect)
	}
}

// onClose is called when a session's connection ends. When it was the
// current one, its sockets are told, and a reconnection starts if one of
// them was connected or waiting and reconnection is on.
func (m *Manager) onClose(sess *session, reason string) {
	m.mu.Lock()
	if m.cur != sess {
		m.mu.Unlock()
		return
	}
	m.cur = nil
	socks := m.socketsLocked()
	reconnect := false
	if !m.opts.DisableReconnection {
		for _, s := range socks {
			if s.waitsForConnection() {
				reconnect = true
			}
		}
	}
	if reconnect && !m.reconnecting {
		m.reconnecting = true
		var stop context.Context
		stop, m.stopLoop = context.WithCancel(context.Background())
		m.loops.Add(1)
		go m.reconnectLoop(stop)
	}
	m.mu.Unlock()
	for _, s := range socks {
		s.lost(reason, reconnect)
	}
}

// reconnectLoop makes reconnection attempts, spaced by the backoff, until
// one opens a connection, the attempts run out, or stop ends.
func (m *Manager) reconnectLoop(stop context.Context) {
	defer m.loops.Done()
	for {
		m.mu.Lock()
		if stop.Err() != nil {
			m.mu.Unlock()
			return
		}
		if limit := m.opts.ReconnectionAttempts; limit > 0 && m.backoff.attempts >= limit {
			m.backoff.reset()
			m.reconnecting = false
			m.stopLoop = nil
			socks := m.socketsLocked()
			m.mu.Unlock()
			m.fire(func(l *managerListeners) {
				for _, fn := range l.failed {
					fn()
				}
			})
			for _, s := range socks {
				s.gaveUp()
			}
			return
		}
		delay := m.backoff.duration()
		attempt := m.backoff.attempts
		m.mu.Unlock()

		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-stop.Done():
			timer.Stop()
			return
		}
		m.fire(func(l *managerListeners) {
			for _, fn := range l.attempt {
				fn(attempt)
			}
		})
		ctx, cancel := context.WithTimeout(stop, reconnectTimeout)
		sess, err := m.dial(ctx, stop)
		cancel()
		if stop.Err() != nil {
			return
		}
		if err != nil {
			m.fire(func(l *managerListeners) {
				for _, fn := range l.err {
					fn(err)
				}
			})
			continue
		}
		m.fire(func(l *managerListeners) {
			for _, fn := range l.reconnect {
				fn(attempt)
			}
		})
		m.joinAll(sess)
		return
	}
}

// release forgets a socket that ended; the connection closes, and a
// reconnection stops, when none is left: at once when wait is set, else
// in the background (when called from the connection's own goroutines).
func (m *Manager) release(s *Socket, wait bool) {
	m.mu.Lock()
	if m.socks[s.nsp] == s {
		delete(m.socks, s.nsp)
	}
	var sess *session
	last := len(m.socks) == 0
	if last {
		sess = m.cur
		m.cur = nil
		if m.stopLoop != nil {
			m.stopLoop()
			m.stopLoop = nil
			m.reconnecting = false
		}
	}
	m.mu.Unlock()
	switch {
	case sess == nil:
	case wait:
		sess.eng.close(closeTimeout)
	default:
		go sess.eng.close(closeTimeout)
	}
	if wait && last {
		m.loops.Wait()
	}
}

// closeTimeout bounds how long closing waits for what is queued, the
// goodbye included, to be written.
const closeTimeout = 10 * time.Second

// Errors of emits on a socket that cannot take them.
var (
	// ErrNotConnected is returned when emitting on a socket that is not
	// connected and will not be: never connected, or ended (see
	// Socket.Done), or with Options.MaxBufferedEmits negative.
	ErrNotConnected = errors.New("rally/client: socket not connected")
	// ErrBufferFull is returned when emitting on a socket that waits for
	// a connection and already keeps Options.MaxBufferedEmits emits.
	ErrBufferFull = errors.New("rally/client: socket not connected and its send buffer is full")
)
