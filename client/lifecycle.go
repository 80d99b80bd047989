package client

import (
	"errors"
	"fmt"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/internal/parser"
)

// The transitions of a socket's state, driven by its manager's
// connection: CONNECT sent and answered, events and acks received, the
// connection lost, the end.

// errReconnectFailed ends a Connect that waited for a reconnection that
// gave up.
var errReconnectFailed = errors.New("rally/client: reconnection failed")

// waitsForConnection reports whether the socket wants its connection back
// when it is lost.
func (s *Socket) waitsForConnection() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == stateConnected || s.state == stateReconnecting
}

// sendConnect sends the socket's CONNECT on sess, once per connection,
// when it waits for one.
func (s *Socket) sendConnect(sess *session) {
	s.mu.Lock()
	if s.joined == sess || (s.state != stateConnecting && s.state != stateReconnecting) {
		s.mu.Unlock()
		return
	}
	s.joined = sess
	p := &parser.Packet{Type: parser.Connect, Namespace: s.nsp, ID: parser.NoID, Data: s.connectDataLocked()}
	s.mu.Unlock()
	sess.send(p) // a failure is the connection's close, handled there
}

// endConnectLocked gives the Connect in progress its result.
func (s *Socket) endConnectLocked(err error) {
	if s.result != nil {
		s.result <- err
		s.result = nil
	}
}

// connected handles the server's CONNECT reply on sess: the socket is
// connected, its OnConnect functions run, then the events received before
// the reply, and the emits kept meanwhile are sent, in order.
func (s *Socket) connected(sess *session, sid, pid string) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.mu.Lock()
	if s.joined != sess || (s.state != stateConnecting && s.state != stateReconnecting) {
		s.mu.Unlock()
		return
	}
	s.state = stateConnected
	s.id = sid
	s.connectedPIDLocked(pid)
	recv := s.recvBuf
	s.recvBuf = nil
	for _, p := range recv {
		s.noteOffsetLocked(p)
	}
	send := s.sendBuf
	s.sendBuf = nil
	for _, p := range send {
		if a := s.acks[p.ID]; p.ID != parser.NoID && a != nil {
			a.buffered = false
		}
	}
	fns := s.onConnect
	s.endConnectLocked(nil)
	s.mu.Unlock()

	s.enqueue(func() {
		for _, fn := range fns {
			fn()
		}
	})
	for _, p := range recv {
		s.enqueue(func() { s.dispatch(p) })
	}
	for _, p := range send {
		sess.send(p)
	}
}

// received handles an event: dispatched when connected, kept until the
// CONNECT reply while connecting.
func (s *Socket) received(p *parser.Packet) {
	s.mu.Lock()
	switch s.state {
	case stateConnected:
		s.noteOffsetLocked(p)
		s.mu.Unlock()
		s.enqueue(func() { s.dispatch(p) })
	case stateConnecting, stateReconnecting:
		s.recvBuf = append(s.recvBuf, p)
		s.mu.Unlock()
	default:
		s.mu.Unlock()
	}
}

// lost handles the loss of the socket's connection; with reconnect, the
// manager is getting another.
func (s *Socket) lost(reason string, reconnect bool) {
	s.mu.Lock()
	s.recvBuf = nil
	switch s.state {
	case stateConnected:
		s.lostReason = reason
		// As the official client: acks of events already sent fail, those
		// of kept events still wait.
		for id, a := range s.acks {
			if !a.buffered {
				delete(s.acks, id)
				a.ch <- ackResult{err: rally.ErrDisconnected}
			}
		}
		if !reconnect {
			s.finishLocked(reason, true, false)
			return
		}
		s.state = stateReconnecting
		fns := s.onDisconnect
		s.mu.Unlock()
		s.enqueue(func() {
			for _, fn := range fns {
				fn(reason)
			}
		})
	case stateReconnecting:
		// A reconnection's connection, lost before the namespace was
		// joined again.
		if !reconnect {
			s.finishLocked(s.lostReason, false, false)
			return
		}
		s.mu.Unlock()
	case stateConnecting:
		s.endConnectLocked(fmt.Errorf("rally/client: connection closed: %s", reason))
		s.mu.Unlock()
	default:
		s.mu.Unlock()
	}
}

// refused handles a CONNECT_ERROR on sess.
func (s *Socket) refused(sess *session, err error) {
	s.mu.Lock()
	if s.joined != sess {
		s.mu.Unlock()
		return
	}
	fns := s.onConnectError
	s.enqueue(func() {
		for _, fn := range fns {
			fn(err)
		}
	})
	s.forgetSessionLocked()
	switch s.state {
	case stateConnecting:
		s.endConnectLocked(err)
		s.mu.Unlock()
	case stateReconnecting:
		s.finishLocked(s.lostReason, false, false)
	default:
		s.mu.Unlock()
	}
}

// gaveUp ends a socket waiting for a reconnection that failed.
func (s *Socket) gaveUp() {
	s.mu.Lock()
	switch s.state {
	case stateReconnecting:
		s.finishLocked(s.lostReason, false, false)
	case stateConnecting:
		s.endConnectLocked(errReconnectFailed)
		s.mu.Unlock()
	default:
		s.mu.Unlock()
	}
}

// disconnect ends the socket; with sendPacket the server is told (and the
// connection, when released, closed before it returns).
func (s *Socket) disconnect(sendPacket bool, reason string) {
	s.mu.Lock()
	s.forgetSessionLocked()
	switch s.state {
	case stateConnected:
		if sendPacket {
			s.joined.send(&parser.Packet{Type: parser.Disconnect, Namespace: s.nsp, ID: parser.NoID})
		}
		s.finishLocked(reason, true, sendPacket)
	case stateReconnecting:
		s.finishLocked(reason, false, sendPacket)
	case stateConnecting:
		s.endConnectLocked(errors.New("rally/client: socket disconnected while connecting"))
		s.mu.Unlock()
	default:
		s.mu.Unlock()
	}
}

// finishLocked ends the socket for good, with s.mu held, which it
// releases: kept emits are dropped, acks fail, the OnDisconnect functions
// run when notify is set, then Done closes, and the manager forgets the
// socket (waiting for the connection to close when wait is set).
func (s *Socket) finishLocked(reason string, notify, wait bool) {
	s.state = stateClosed
	s.reason = reason
	s.recvBuf = nil
	s.dropBufferLocked(rally.ErrDisconnected)
	for id, a := range s.acks {
		delete(s.acks, id)
		a.ch <- ackResult{err: rally.ErrDisconnected}
	}
	done := s.doneLocked()
	var fns []func(string)
	if notify {
		fns = s.onDisconnect
	}
	s.mu.Unlock()
	s.enqueue(func() {
		for _, fn := range fns {
			fn(reason)
		}
		close(done)
	})
	s.m.release(s, wait)
}
