package engineio

import (
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/rallyhq/rally/internal/ws"
)

// accept upgrades r to a websocket with the server's options. The request
// has been answered when it fails.
func (srv *Server) accept(w http.ResponseWriter, r *http.Request) (*ws.Conn, error) {
	return ws.Accept(w, r, ws.AcceptOptions{
		MaxMessageSize: srv.opts.MaxPayload,
		Compression:    srv.opts.Compression,
		NoPoller:       srv.opts.NoPoller,
		WriteTimeout:   srv.opts.WriteTimeout,
	})
}

// handshakeWebSocket opens a session directly on a websocket. The session
// is registered before the upgrade, so that a refused handshake is answered
// 400 rather than upgraded and closed; until the upgrade is done it holds
// the open packet and writes nothing.
func (srv *Server) handshakeWebSocket(w http.ResponseWriter, r *http.Request) {
	srv.wg.Add(1)
	defer srv.wg.Done()
	s := srv.register(r, TransportWebSocket)
	if s == nil {
		srv.refuse(w, r, errBadRequest, errBadRequest.message)
		return
	}
	s.mu.Lock()
	s.queue = append(s.queue, s.openPacket([]string{}))
	s.mu.Unlock()
	s.opened()
	srv.setHeaders(w.Header(), r, true)
	conn, err := srv.accept(w, r)
	if err != nil {
		s.Abort(ReasonTransportError)
		return
	}
	s.mu.Lock()
	if s.state == stateClosed {
		// Aborted while upgrading, as by Server.Close.
		s.mu.Unlock()
		conn.CloseNow()
		return
	}
	s.ws = conn
	if s.readPaused != nil {
		conn.Pause()
	}
	s.wakeLocked() // closes conn after the open packet if Close came meanwhile
	s.mu.Unlock()
	s.startHeartbeat()
	s.serveWebSocket(conn)
}

// serveUpgrade moves a polling session to a websocket: the probe, then the
// upgrade packet, then everything queued is flushed on the websocket.
func (srv *Server) serveUpgrade(w http.ResponseWriter, r *http.Request, s *Session) {
	srv.wg.Add(1)
	defer srv.wg.Done()
	s.mu.Lock()
	ok := s.state == stateOpen && s.transport == TransportPolling && !s.upgrading && !srv.opts.DisableUpgrades
	if ok {
		s.upgrading = true
	}
	s.mu.Unlock()

	srv.setHeaders(w.Header(), r, false)
	conn, err := srv.accept(w, r)
	if err != nil {
		if ok {
			s.endUpgrade(nil)
		}
		return
	}
	if !ok {
		// The official server accepts and at once closes a websocket for
		// a session that is closed, upgraded or already upgrading.
		conn.CloseNow()
		return
	}
	if !s.probe(conn) {
		conn.CloseNow()
		s.endUpgrade(nil)
		return
	}
	if !s.endUpgrade(conn) {
		conn.CloseNow()
		return
	}
	if u, ok := s.handler.(Upgrader); ok {
		u.OnUpgrade()
	}
	s.serveWebSocket(conn)
}

// probe runs the upgrade handshake on conn: "2probe" answered by "3probe",
// then "5". While it waits for "5" a pending poll is released with a noop
// every 100 ms so that the client can pause polling.
func (s *Session) probe(conn *ws.Conn) bool {
	deadline := time.Now().Add(s.srv.opts.UpgradeTimeout)
	m, err := conn.ReadMessage(deadline)
	if err != nil || m.Binary || string(m.Data) != "2probe" {
		return false
	}
	if conn.WriteMessages(ws.Message{Data: []byte("3probe")}) != nil {
		return false
	}

	done := make(chan struct{})
	defer close(done)
	s.srv.wg.Add(1)
	go func() {
		defer s.srv.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			s.releasePoll()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()

	m, err = conn.ReadMessage(deadline)
	return err == nil && !m.Binary && string(m.Data) == string(Upgrade)
}

// releasePoll answers a pending poll with a noop when nothing else is queued.
func (s *Session) releasePoll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == stateOpen && s.poll.get != nil && len(s.queue) == 0 {
		s.queue = append(s.queue, noopFrame)
		s.wakeLocked()
	}
}

// endUpgrade finishes an upgrade attempt. With a websocket it switches the
// session to it and flushes the queue there; it reports false when the
// session ended in the meantime.
func (s *Session) endUpgrade(conn *ws.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.upgrading = false
	if conn == nil || s.state == stateClosed {
		return false
	}
	// A session closing gracefully still upgrades: the client paused
	// polling and expects what is queued on the websocket, which the
	// writer then closes. The polling close packet is not needed there.
	s.queue = slices.DeleteFunc(s.queue, isClose)
	s.transport = TransportWebSocket
	s.ws = conn
	if s.readPaused != nil {
		conn.Pause() // before Serve: nothing more is read
	}
	if s.poll.get != nil {
		// A poll still pending is released by its handler, which sees
		// that the session moved.
		select {
		case s.poll.get <- struct{}{}:
		default:
		}
	}
	if len(s.queue) > 0 || s.state == stateClosing {
		s.wakeLocked()
	}
	return true
}

// serveWebSocket hands every message of conn to the session until either
// ends. On Linux, reads run on the websocket poller's workers when bytes
// arrive; no goroutine waits for an idle client.
func (s *Session) serveWebSocket(conn *ws.Conn) {
	conn.Serve(func(m ws.Message) {
		if s.protocol == Protocol3 {
			var p Packet
			var err error
			if m.Binary {
				p, err = decodeBinary3(m.Data)
			} else {
				p, err = DecodePacket3(m.Data)
			}
			if err != nil {
				s.Abort(ReasonParseError)
				return
			}
			s.receive(p)
			return
		}
		if m.Binary {
			s.receive(Packet{Type: Message, Data: m.Data, Binary: true})
			return
		}
		p, err := DecodePacket(m.Data)
		if err != nil {
			s.Abort(ReasonParseError)
			return
		}
		s.receive(p)
	}, func(err error) {
		s.Abort(readErrorReason(err))
	})
}

// readErrorReason maps the error that ended a websocket to an engine close
// reason.
func readErrorReason(err error) string {
	var ce *ws.CloseError
	switch {
	case errors.As(err, &ce), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, io.ErrUnexpectedEOF):
		return ReasonTransportClose
	}
	return ReasonTransportError // protocol violations and network errors
}

// writeLoop writes queued frames on the websocket until the queue is empty.
// When the session is closing it then closes the websocket.
func (s *Session) writeLoop() {
	defer s.srv.wg.Done()
	s.mu.Lock()
	conn := s.ws
	s.mu.Unlock()
	for {
		s.mu.Lock()
		frames, size := s.takeQueueLocked()
		if len(frames) == 0 {
			s.writing = false
			closing := s.state == stateClosing
			s.mu.Unlock()
			if closing {
				conn.Close(ws.StatusNormalClosure, "")
				s.Abort(ReasonForcedClose)
			}
			return
		}
		s.mu.Unlock()
		out := frames
		if s.b64 {
			out = make([]Frame, len(frames))
			for i, f := range frames {
				out[i] = base64Frame(f)
			}
		}
		err := conn.WriteMessages(out...)
		s.mu.Lock()
		s.wroteLocked(size)
		if err != nil {
			s.writing = false
			s.mu.Unlock()
			s.Abort(ReasonTransportError)
			return
		}
		s.mu.Unlock()
	}
}
