package rally

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rallyhq/rally/internal/engineio"
	"github.com/rallyhq/rally/internal/parser"
)

// conn is the Socket.IO side of one Engine.IO session: it decodes packets
// and routes them to the sockets it holds, one per connected namespace.
type conn struct {
	hub       *Hub
	sess      *engineio.Session
	handshake Handshake // of the first request, shared by every socket
	// v3 marks a Socket.IO v2 client (Engine.IO 3, Socket.IO protocol
	// v4): its main namespace connects without a CONNECT, other
	// namespaces take the query in the namespace, and its sockets' ids
	// derive from the engine's.
	v3 bool

	dec parser.Decoder // the hub codec's state; used only from OnMessage, which the engine serializes

	mu           sync.Mutex
	sockets      map[string]*Socket // by namespace name, connecting or connected
	closed       bool
	connectTimer *time.Timer
	matching     map[string]bool // namespaces whose CONNECT a parent namespace is matching

	in inbound
}

// inbound counts the events read from the client and not yet handled. When
// they reach the hub's limits, the engine stops reading the client until
// half of them have been handled.
type inbound struct {
	mu     sync.Mutex
	events int
	bytes  int64
	paused bool
}

// newConn is the engine's NewSession hook.
func (h *Hub) newConn(sess *engineio.Session, r *http.Request) engineio.Handler {
	c := &conn{hub: h, sess: sess, sockets: make(map[string]*Socket), handshake: newHandshake(r),
		v3: sess.Protocol() == engineio.Protocol3}
	if !h.addConn(c) {
		return nil // shutting down: the handshake is refused
	}
	c.mu.Lock() // the hub can see c already
	c.connectTimer = time.AfterFunc(h.opts.ConnectTimeout, c.checkConnected)
	c.mu.Unlock()
	h.noteConnectionOpened(sess.Transport())
	return c
}

// OnOpen is called by the engine once the open packet is on its way. A v2
// client is connected to the main namespace at once, as Node does, with
// an empty auth; it sends no CONNECT for it.
func (c *conn) OnOpen() {
	if c.v3 {
		c.join(c.hub.main, json.RawMessage(`{}`))
	}
}

// OnUpgrade is called by the engine when the connection moved to
// websocket.
func (c *conn) OnUpgrade() { c.hub.noteConnectionUpgraded() }

// checkConnected closes a connection that joined no namespace in time.
func (c *conn) checkConnected() {
	c.mu.Lock()
	idle := len(c.sockets) == 0 && !c.closed
	c.mu.Unlock()
	if idle {
		c.sess.Close()
	}
}

// OnMessage handles one Engine.IO message.
func (c *conn) OnMessage(data []byte, binary bool) {
	c.hub.notePacketIn(len(data))
	p, err := c.hub.codec.Decode(&c.dec, data, binary)
	if err != nil {
		c.hub.reportError(nil, fmt.Errorf("rally: malformed packet from session %s: %w", c.sess.ID(), err))
		c.abort(ReasonForcedClose)
		return
	}
	if p == nil {
		return // waiting for attachments
	}
	if c.v3 {
		c.splitNamespace(p)
	}

	c.mu.Lock()
	s := c.sockets[p.Namespace]
	c.mu.Unlock()

	switch p.Type {
	case parser.Connect:
		if s != nil {
			c.abort(ReasonForcedServerClose) // a second CONNECT
			return
		}
		c.connect(p)
	case parser.Event, parser.BinaryEvent:
		if s == nil || !s.isConnected() {
			c.abort(ReasonForcedServerClose)
			return
		}
		size := p.Size()
		c.hold(size)
		s.enqueue(func() {
			s.dispatch(p)
			c.release(size)
		})
	case parser.Ack, parser.BinaryAck:
		if s == nil || !s.isConnected() {
			c.abort(ReasonForcedServerClose)
			return
		}
		s.resolveAck(p)
	case parser.Disconnect:
		if s == nil || !s.isConnected() {
			c.abort(ReasonForcedServerClose)
			return
		}
		s.close(ReasonClientNamespaceDisconnect, false)
	case parser.ConnectError:
		c.abort(ReasonForcedServerClose)
	}
}

// connect handles a CONNECT packet for a namespace this connection has not
// joined.
func (c *conn) connect(p *parser.Packet) {
	if n := c.hub.namespace(p.Namespace); n != nil {
		c.join(n, p.Data)
		return
	}
	if !c.hub.hasParents() {
		c.refuseNamespace(p.Namespace)
		return
	}
	c.mu.Lock()
	ok := c.matchingLocked(p.Namespace)
	c.mu.Unlock()
	if !ok {
		c.abort(ReasonForcedServerClose) // a second CONNECT
		return
	}
	c.connectDynamic(p)
}

// join creates the socket of a CONNECT to namespace n.
func (c *conn) join(n *Namespace, auth json.RawMessage) {
	s := newSocket(n, c, auth)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.sockets[n.name] = s
	c.mu.Unlock()
	s.enqueue(s.runConnect)
}

// splitNamespace reads the namespace of a v2 client's packet as Node
// does, as a URL path relative to the root: "/admin?token=x" is the
// namespace "/admin", and a CONNECT's auth is its query as a JSON object
// of strings (the last of repeated keys), {} without one.
func (c *conn) splitNamespace(p *parser.Packet) {
	name := p.Namespace
	plain := strings.HasPrefix(name, "/") && !strings.HasPrefix(name, "//") &&
		!strings.ContainsAny(name, "?#%\\.")
	var query url.Values
	if !plain {
		if u, err := url.Parse(name); err == nil {
			query = u.Query()
			u = (&url.URL{Scheme: "https", Host: "socket.io", Path: "/"}).ResolveReference(u)
			name = u.EscapedPath()
		}
	}
	p.Namespace = name
	if p.Type != parser.Connect {
		return
	}
	auth := make(map[string]string, len(query))
	for k, v := range query {
		auth[k] = v[len(v)-1]
	}
	p.Data, _ = json.Marshal(auth) // strings always encode
}

// frames returns frames as this connection's engine session takes them.
func (c *conn) frames(frames []engineio.Frame) []engineio.Frame {
	if c.v3 {
		return engineio.EIO3Frames(frames)
	}
	return frames
}

// socketID returns the id of a new socket of this connection in namespace
// n: a random one, or for a v2 client the engine's id, preceded by the
// namespace and "#" but in the main namespace, as Node names them.
func (c *conn) socketID(n *Namespace) string {
	if !c.v3 {
		return newSocketID()
	}
	if n.name == "/" {
		return c.sess.ID()
	}
	return n.name + "#" + c.sess.ID()
}

// refuseNamespace answers a CONNECT to a namespace that does not exist.
func (c *conn) refuseNamespace(name string) {
	c.send(&parser.Packet{Type: parser.ConnectError, Namespace: name, ID: parser.NoID,
		Data: []byte(`{"message":"Invalid namespace"}`)})
}

// hold counts an event read and waiting to be handled, and pauses reading
// once the waiting events reach the hub's limits.
func (c *conn) hold(size int64) {
	c.in.mu.Lock()
	defer c.in.mu.Unlock()
	c.in.events++
	c.in.bytes += size
	if !c.in.paused && (c.in.events >= c.hub.opts.MaxPendingEvents || c.in.bytes >= c.hub.opts.MaxPendingBytes) {
		c.in.paused = true
		c.sess.PauseReading() // under c.in.mu: pauses and resumes stay in order
	}
}

// release counts an event handled (or dropped), and resumes reading once
// half of the limits is free again.
func (c *conn) release(size int64) {
	c.in.mu.Lock()
	defer c.in.mu.Unlock()
	c.in.events--
	c.in.bytes -= size
	if c.in.paused && c.in.events <= c.hub.opts.MaxPendingEvents/2 && c.in.bytes <= c.hub.opts.MaxPendingBytes/2 {
		c.in.paused = false
		c.sess.ResumeReading()
	}
}

// newHandshake takes what Handshake exposes from the first request of a
// connection; the query is parsed once for all its sockets.
func newHandshake(r *http.Request) Handshake {
	addr := r.RemoteAddr
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	return Handshake{
		Header:      r.Header,
		Host:        r.Host,
		Query:       r.URL.Query(),
		Address:     addr,
		Secure:      r.TLS != nil,
		CrossOrigin: r.Header.Get("Origin") != "",
		URL:         r.URL.RequestURI(),
	}
}

// forget removes a socket that left or failed to connect.
func (c *conn) forget(s *Socket) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sockets[s.nsp.name] == s {
		delete(c.sockets, s.nsp.name)
	}
}

// send encodes p and queues it on the session.
func (c *conn) send(p *parser.Packet) error {
	return c.sess.Send(c.frames(c.hub.encodeFrames(p))...)
}

// reply sends p from the goroutine that handles this connection's events,
// writing it there when nothing else is being written.
func (c *conn) reply(p *parser.Packet) error {
	return c.sess.SendReply(c.frames(c.hub.encodeFrames(p))...)
}

// abort closes every socket with reason and the engine session at once.
func (c *conn) abort(reason string) {
	c.closeSockets(reason)
	c.sess.Abort(reason)
}

// OnClose is called by the engine when the session ends.
func (c *conn) OnClose(reason string) {
	c.closeSockets(reason)
	c.hub.noteConnectionClosed(c.sess.Transport(), reason)
	c.hub.removeConn(c)
}

// closeSockets disconnects every socket without sending anything.
func (c *conn) closeSockets(reason string) {
	c.mu.Lock()
	c.closed = true
	if c.connectTimer != nil {
		c.connectTimer.Stop()
	}
	sockets := slices.Collect(maps.Values(c.sockets))
	c.mu.Unlock()
	for _, s := range sockets {
		s.close(reason, false)
	}
}

// disconnectAll sends DISCONNECT to every namespace, then closes the
// session after writing what is queued.
func (c *conn) disconnectAll() {
	c.mu.Lock()
	sockets := slices.Collect(maps.Values(c.sockets))
	c.mu.Unlock()
	for _, s := range sockets {
		s.close(ReasonServerNamespaceDisconnect, true)
	}
	c.sess.Close()
}

// shutdown disconnects every socket for a hub shutdown: no DISCONNECT
// packet, then the session is closed, after what is queued is written if
// graceful.
func (c *conn) shutdown(graceful bool) {
	c.closeSockets(ReasonServerShuttingDown)
	if graceful {
		c.sess.Shutdown()
	} else {
		c.sess.Abort(ReasonServerShuttingDown)
	}
}
