package rally

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/rallyhq/rally/internal/engineio"
	"github.com/rallyhq/rally/internal/parser"
)

// conn is the Socket.IO side of one Engine.IO session: it decodes packets
// and routes them to the sockets it holds, one per connected namespace.
type conn struct {
	hub  *Hub
	sess *engineio.Session

	dec parser.Decoder // used only from OnMessage, which the engine serializes

	mu           sync.Mutex
	sockets      map[string]*Socket // by namespace name, connecting or connected
	closed       bool
	connectTimer *time.Timer
}

// newConn is the engine's NewSession hook.
func (h *Hub) newConn(sess *engineio.Session) engineio.Handler {
	c := &conn{hub: h, sess: sess, sockets: make(map[string]*Socket)}
	if !h.addConn(c) {
		return nil // shutting down: the handshake is refused
	}
	c.mu.Lock() // the hub can see c already
	c.connectTimer = time.AfterFunc(h.opts.ConnectTimeout, c.checkConnected)
	c.mu.Unlock()
	return c
}

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
	var p *parser.Packet
	var err error
	if binary {
		p, err = c.dec.DecodeBinary(data)
	} else {
		p, err = c.dec.DecodeText(data)
	}
	if err != nil {
		c.hub.reportError(nil, fmt.Errorf("rally: malformed packet from session %s: %w", c.sess.ID(), err))
		c.abort(ReasonForcedClose)
		return
	}
	if p == nil {
		return // waiting for attachments
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
		s.enqueue(func() { s.dispatch(p) })
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
	n := c.hub.namespace(p.Namespace)
	if n == nil {
		c.send(&parser.Packet{Type: parser.ConnectError, Namespace: p.Namespace, ID: parser.NoID,
			Data: []byte(`{"message":"Invalid namespace"}`)})
		return
	}
	s := newSocket(n, c, p.Data)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.sockets[n.name] = s
	c.mu.Unlock()
	s.enqueue(s.runConnect)
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
	return c.sess.Send(encodeFrames(p)...)
}

// reply sends p from the goroutine that handles this connection's events,
// writing it there when nothing else is being written.
func (c *conn) reply(p *parser.Packet) error {
	return c.sess.SendReply(encodeFrames(p)...)
}

// encodeFrames encodes a packet as Engine.IO frames: the message text, then
// one binary frame per attachment.
func encodeFrames(p *parser.Packet) []engineio.Frame {
	text := p.AppendText([]byte{engineio.Message})
	frames := make([]engineio.Frame, 1, 1+len(p.Attachments))
	frames[0] = engineio.Frame{Data: text}
	for _, a := range p.Attachments {
		frames = append(frames, engineio.Frame{Data: a, Binary: true})
	}
	return frames
}

// abort closes every socket with reason and the engine session at once.
func (c *conn) abort(reason string) {
	c.closeSockets(reason)
	c.sess.Abort(reason)
}

// OnClose is called by the engine when the session ends.
func (c *conn) OnClose(reason string) {
	c.closeSockets(reason)
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
