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
// It does not reconnect by itself.
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
)

// Transport names, for Options.Transports.
const (
	TransportPolling   = engineio.TransportPolling
	TransportWebSocket = engineio.TransportWebSocket
)

// Options configures a connection. The zero value connects like the
// official client with default options.
type Options struct {
	// Auth is sent with the CONNECT packet of each namespace (the auth
	// option of the official client); it must encode as a JSON object.
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
}

func (o *Options) transports() []string {
	if len(o.Transports) == 0 {
		return []string{TransportPolling, TransportWebSocket}
	}
	return o.Transports
}

// Manager is one connection to a server, shared by the sockets of several
// namespaces (the Manager of the official client).
type Manager struct {
	base *url.URL
	opts Options

	openMu sync.Mutex // serializes opening the engine
	mu     sync.Mutex
	eng    *engine
	dec    parser.Decoder
	socks  map[string]*Socket
}

// NewManager returns a manager for the server at rawURL (http, https, ws
// or wss; the path is ignored: namespaces are chosen with Socket). It
// connects when a socket connects.
func NewManager(rawURL string, opts *Options) (*Manager, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("rally/client: %w", err)
	}
	m := &Manager{socks: make(map[string]*Socket)}
	if opts != nil {
		m.opts = *opts
	}
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
	eng := m.eng
	m.mu.Unlock()
	if eng == nil {
		return ""
	}
	return eng.Transport()
}

// open returns the engine session, opening it if needed.
func (m *Manager) open(ctx context.Context) (*engine, error) {
	m.openMu.Lock()
	defer m.openMu.Unlock()
	m.mu.Lock()
	eng := m.eng
	m.mu.Unlock()
	if eng != nil && !eng.isClosed() {
		return eng, nil
	}
	m.mu.Lock()
	m.dec = parser.Decoder{}
	m.mu.Unlock()
	eng, err := openEngine(ctx, m.base, &m.opts, m.onMessage, m.onClose)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.eng = eng
	m.mu.Unlock()
	return eng, nil
}

// Close disconnects every socket and closes the connection.
func (m *Manager) Close() {
	m.mu.Lock()
	socks := make([]*Socket, 0, len(m.socks))
	for _, s := range m.socks {
		socks = append(socks, s)
	}
	eng := m.eng
	m.mu.Unlock()
	for _, s := range socks {
		s.disconnect(true, ReasonClientDisconnect)
	}
	if eng != nil {
		eng.close(closeTimeout)
	}
}

// onMessage decodes a Socket.IO packet and routes it to its socket.
func (m *Manager) onMessage(data []byte, binary bool) {
	var p *parser.Packet
	var err error
	if binary {
		p, err = m.dec.DecodeBinary(data)
	} else {
		p, err = m.dec.DecodeText(data)
	}
	if err != nil {
		m.mu.Lock()
		eng := m.eng
		m.mu.Unlock()
		eng.abort(ReasonParseError)
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
		}
		if json.Unmarshal(p.Data, &reply) != nil || reply.SID == "" {
			s.connected(&rally.ConnectError{Message: "the server's CONNECT reply has no sid"})
			return
		}
		s.mu.Lock()
		s.id = reply.SID
		s.mu.Unlock()
		s.connected(nil)
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
		s.connected(ce)
	case parser.Event, parser.BinaryEvent:
		s.enqueue(func() { s.dispatch(p) })
	case parser.Ack, parser.BinaryAck:
		s.resolveAck(p)
	case parser.Disconnect:
		s.disconnect(false, ReasonServerDisconnect)
	}
}

// onClose is called when the engine session ends.
func (m *Manager) onClose(reason string) {
	m.mu.Lock()
	socks := make([]*Socket, 0, len(m.socks))
	for _, s := range m.socks {
		socks = append(socks, s)
	}
	m.mu.Unlock()
	for _, s := range socks {
		s.closed(reason)
	}
}

// send encodes p and queues it.
func (m *Manager) send(p *parser.Packet) error {
	m.mu.Lock()
	eng := m.eng
	m.mu.Unlock()
	if eng == nil {
		return errClosed
	}
	frames := []engineio.Frame{{Data: p.AppendText([]byte{engineio.Message})}}
	for _, a := range p.Attachments {
		frames = append(frames, engineio.Frame{Data: a, Binary: true})
	}
	return eng.send(frames...)
}

// release forgets a socket; the connection closes when none is left, at
// once when wait is set, else in the background (when called from the
// connection's own goroutines).
func (m *Manager) release(s *Socket, wait bool) {
	m.mu.Lock()
	if m.socks[s.nsp] == s {
		delete(m.socks, s.nsp)
	}
	last := len(m.socks) == 0
	eng := m.eng
	m.mu.Unlock()
	switch {
	case !last || eng == nil:
	case wait:
		eng.close(closeTimeout)
	default:
		go eng.close(closeTimeout)
	}
}

// closeTimeout bounds how long closing waits for what is queued, the
// goodbye included, to be written.
const closeTimeout = 10 * time.Second

// errNotConnected is returned when emitting on a socket that is not
// connected.
var errNotConnected = errors.New("rally/client: socket not connected")
