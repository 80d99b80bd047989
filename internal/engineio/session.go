package engineio

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rallyhq/rally/internal/ws"
)

// Engine close reasons, as the official server reports them.
const (
	ReasonTransportClose = "transport close"
	ReasonTransportError = "transport error"
	ReasonPingTimeout    = "ping timeout"
	ReasonParseError     = "parse error"
	ReasonForcedClose    = "forced close"
	// ReasonQueueFull: the client did not take what was sent to it fast
	// enough (see Options.MaxQueuedBytes). The official server has no
	// such limit.
	ReasonQueueFull = "write queue full"
)

// ErrSessionClosed is returned when sending on a closed or closing session.
var ErrSessionClosed = errors.New("engine.io: session closed")

// Handler receives the messages and the end of a session. OnMessage calls
// are serialized; OnClose is called once, possibly while an OnMessage call
// is still running.
type Handler interface {
	OnMessage(data []byte, binary bool)
	OnClose(reason string)
}

// Opener is implemented by Handlers that want to know when their
// session's open packet went out (or was queued ahead of everything they
// send).
type Opener interface {
	OnOpen()
}

// Upgrader is implemented by Handlers that want to know when their
// session moved to websocket.
type Upgrader interface {
	OnUpgrade()
}

type sessionState uint8

const (
	stateOpen sessionState = iota
	stateClosing
	stateClosed
)

// Session is one Engine.IO session: a client identified by its sid, on one
// transport at a time. It keeps nothing of its handshake request but the
// values of its context; NewSession takes what else it needs.
type Session struct {
	id      string
	srv     *Server
	ctx     context.Context
	cancel  context.CancelFunc
	handler Handler
	// protocol is the Engine.IO revision, 3 or 4; b64 marks a revision 3
	// client that takes binary messages as base64 text (b64=1).
	protocol int
	b64      bool

	recvMu sync.Mutex // serializes handler.OnMessage

	mu            sync.Mutex
	state         sessionState
	closingReason string
	transport     string
	queue         []Frame
	queuedBytes   int64   // size of what Send queued since the queue was last taken
	writingBytes  int64   // size of what was taken and is being written
	spare         []Frame // reused backing array for queue
	ws            *ws.Conn
	writing       bool   // a websocket write runs: writeLoop, pooled or in SendReply
	write         func() // s.writeLoop, kept to start writers without allocating
	poll          pollState
	upgrading     bool
	heartbeat     *time.Timer
	awaitingPong  bool
	closeTimer    *time.Timer
	readPaused    chan struct{} // made by PauseReading, closed by ResumeReading
}

func newSession(srv *Server, r *http.Request, transport, id string) *Session {
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	q := r.URL.Query()
	protocol := protocolOf(q)
	return &Session{
		id:        id,
		srv:       srv,
		ctx:       ctx,
		cancel:    cancel,
		transport: transport,
		protocol:  protocol,
		b64:       protocol == Protocol3 && q.Get("b64") != "", // as the official server: any value
	}
}

// Protocol returns the session's Engine.IO revision: Protocol4, or
// Protocol3 for a client accepted with Options.AllowEIO3.
func (s *Session) Protocol() int { return s.protocol }

// opened tells the handler that the open packet is on its way.
func (s *Session) opened() {
	if o, ok := s.handler.(Opener); ok {
		o.OnOpen()
	}
}

// ID returns the session id (sid).
func (s *Session) ID() string { return s.id }

// Context carries the values of the handshake request's context and is
// canceled when the session ends.
func (s *Session) Context() context.Context { return s.ctx }

// PauseReading stops taking messages from the client until ResumeReading:
// a websocket is no longer read (TCP holds the client back), and a polling
// POST waits before its next packet, its response held.
func (s *Session) PauseReading() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readPaused != nil || s.state == stateClosed {
		return
	}
	s.readPaused = make(chan struct{})
	if s.ws != nil {
		s.ws.Pause()
	}
}

// ResumeReading takes messages again after PauseReading.
func (s *Session) ResumeReading() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readPaused == nil {
		return
	}
	close(s.readPaused)
	s.readPaused = nil
	if s.ws != nil {
		s.ws.Resume()
	}
}

// waitReadable waits while reading is paused. It reports false when the
// session or ctx (the request's) ended first.
func (s *Session) waitReadable(ctx context.Context) bool {
	for {
		s.mu.Lock()
		paused, open := s.readPaused, s.state != stateClosed
		s.mu.Unlock()
		if !open {
			return false
		}
		if paused == nil {
			return true
		}
		select {
		case <-paused:
		case <-ctx.Done():
			return false
		case <-s.ctx.Done():
			return false
		}
	}
}

// Transport returns the name of the current transport.
func (s *Session) Transport() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transport
}

// openPacket returns the handshake packet for this session.
func (s *Session) openPacket(upgrades []string) Frame {
	o := s.srv.opts
	b := []byte{Open}
	b = append(b, `{"sid":`...)
	b = appendJSONString(b, s.id)
	b = append(b, `,"upgrades":[`...)
	for i, u := range upgrades {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, u)
	}
	b = append(b, `],"pingInterval":`...)
	b = strconv.AppendInt(b, o.PingInterval.Milliseconds(), 10)
	b = append(b, `,"pingTimeout":`...)
	b = strconv.AppendInt(b, o.PingTimeout.Milliseconds(), 10)
	b = append(b, `,"maxPayload":`...)
	b = strconv.AppendInt(b, o.MaxPayload, 10)
	b = append(b, '}')
	return Frame{Data: b}
}

// appendJSONString appends s as a JSON string. An id from NewID needs no
// escaping; one from Options.GenerateID may.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// ErrQueueFull is returned by Send when the client is too slow to take
// what is sent to it: the session is closed with ReasonQueueFull.
var ErrQueueFull = errors.New("engine.io: write queue full")

// frameOverhead is what a queued frame costs besides its data.
const frameOverhead = 40

// Send queues frames to be written in order, together: no other frame is
// put between them except a ping. A revision 3 session takes binary
// frames as EIO3Frames makes them. When what waits to be written would
// exceed Options.MaxQueuedBytes, the session is closed instead.
func (s *Session) Send(frames ...Frame) error { return s.send(frames, false) }

// SendReply is Send for a goroutine that serves this client only, such as
// the one answering its events: when no write is in progress on a
// websocket, it writes the frames itself before returning, which saves
// handing them to a writer. It may block while the client does not read.
func (s *Session) SendReply(frames ...Frame) error { return s.send(frames, true) }

func (s *Session) send(frames []Frame, inline bool) error {
	s.mu.Lock()
	if s.state != stateOpen {
		s.mu.Unlock()
		return ErrSessionClosed
	}
	var size int64
	for _, f := range frames {
		size += int64(len(f.Data)) + frameOverhead
	}
	if s.overflowLocked(size) {
		s.mu.Unlock()
		return ErrQueueFull
	}
	s.queuedBytes += size
	s.queue = append(s.queue, frames...)
	s.countOut(frames)
	if inline && s.ws != nil && s.transport == TransportWebSocket && !s.writing {
		s.writing = true
		s.srv.wg.Add(1)
		s.mu.Unlock()
		s.writeLoop()
		return nil
	}
	s.wakeLocked()
	s.mu.Unlock()
	return nil
}

// overflowLocked reports whether queueing size more bytes would exceed
// MaxQueuedBytes, and then closes the session with ReasonQueueFull.
func (s *Session) overflowLocked(size int64) bool {
	limit := s.srv.opts.MaxQueuedBytes
	if limit <= 0 || s.queuedBytes+s.writingBytes+size <= limit {
		return false
	}
	// Closing takes the locks of the layers above, which the caller may
	// hold (a broadcast in progress): close from a goroutine, and refuse
	// further frames meanwhile.
	s.state = stateClosing
	s.closingReason = ReasonQueueFull
	s.srv.wg.Add(1)
	go func() {
		defer s.srv.wg.Done()
		s.Abort(ReasonQueueFull)
	}()
	return true
}

// SendVolatile queues frames only if the transport can write them at once:
// nothing else is queued and, on websocket, no write is in progress; on
// polling, a GET is waiting. It reports whether the frames were queued.
func (s *Session) SendVolatile(frames ...Frame) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateOpen || len(s.queue) > 0 {
		return false
	}
	if s.transport == TransportWebSocket {
		if s.writing || s.ws == nil {
			return false
		}
	} else if s.poll.get == nil {
		return false
	}
	s.queue = append(s.queue, frames...)
	s.countOut(frames)
	s.wakeLocked()
	return true
}

// countOut tells OnPacketOut of frames queued, by the size of their data
// (a text message's type byte not counted, as the session's handler is
// given messages without it).
func (s *Session) countOut(frames []Frame) {
	if f := s.srv.opts.OnPacketOut; f != nil {
		for _, fr := range frames {
			n := len(fr.Data)
			if !fr.Binary && n > 0 {
				n--
			}
			f(n)
		}
	}
}

// Queued returns the bytes waiting to be written to the client, the write
// in progress included.
func (s *Session) Queued() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queuedBytes + s.writingBytes
}

// wakeLocked makes the current transport write what is queued.
func (s *Session) wakeLocked() {
	switch {
	case s.ws != nil && s.transport == TransportWebSocket:
		s.startWriterLocked()
	case s.poll.get != nil:
		select {
		case s.poll.get <- struct{}{}:
		default:
		}
	}
}

// startWriterLocked starts the websocket writer unless it runs. The writer
// runs on a pooled goroutine and ends when the queue is empty.
func (s *Session) startWriterLocked() {
	if s.writing {
		return
	}
	s.writing = true
	s.srv.wg.Add(1)
	if s.write == nil {
		s.write = s.writeLoop // allocated once per session, not per wake
	}
	s.srv.pool.Go(s.write)
}

// takeQueueLocked returns the queued frames and empties the queue, reusing
// the previous backing array. Their size counts against MaxQueuedBytes
// until the writer calls wroteLocked with it.
func (s *Session) takeQueueLocked() ([]Frame, int64) {
	frames, size := s.queue, s.queuedBytes
	clear(s.spare)
	s.queue, s.spare = s.spare[:0], frames
	s.queuedBytes = 0
	s.writingBytes += size
	return frames, size
}

// wroteLocked accounts for frames of the given size taken by
// takeQueueLocked and now written (or failed).
func (s *Session) wroteLocked(size int64) { s.writingBytes -= size }

// startHeartbeat schedules the first ping. In revision 3 the client pings
// instead: the session ends when it does not for the ping interval and
// timeout together.
func (s *Session) startHeartbeat() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateOpen {
		return
	}
	if s.protocol == Protocol3 {
		s.heartbeat = time.AfterFunc(s.clientPingTimeout(), s.onClientSilent)
		return
	}
	s.heartbeat = time.AfterFunc(s.srv.opts.PingInterval, s.onHeartbeat)
}

// clientPingTimeout is how long a revision 3 client may go without a ping.
func (s *Session) clientPingTimeout() time.Duration {
	return s.srv.opts.PingInterval + s.srv.opts.PingTimeout
}

// onClientSilent closes a revision 3 session whose client stopped pinging.
func (s *Session) onClientSilent() {
	s.mu.Lock()
	if s.state == stateClosed {
		s.mu.Unlock()
		return
	}
	if s.readPaused != nil {
		// The ping may wait unread behind the client's events.
		s.heartbeat.Reset(s.clientPingTimeout())
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.Abort(ReasonPingTimeout)
}

// onClientPing answers a revision 3 client's ping with a pong and waits
// for the next ping.
func (s *Session) onClientPing() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateOpen {
		return
	}
	if s.heartbeat != nil {
		s.heartbeat.Reset(s.clientPingTimeout())
	}
	// A client that pings without reading its pongs fills its queue as
	// one that does not read its messages.
	size := int64(len(pongFrame.Data)) + frameOverhead
	if s.overflowLocked(size) {
		return
	}
	s.queue = append(s.queue, pongFrame)
	s.queuedBytes += size
	s.wakeLocked()
}

// onHeartbeat sends a ping, or closes the session when the previous ping
// went unanswered.
func (s *Session) onHeartbeat() {
	s.mu.Lock()
	if s.state == stateClosed {
		s.mu.Unlock()
		return
	}
	// While reading is paused the pong may wait unread behind the
	// client's events: ping again instead, so that the client, which
	// expects pings, does not take the server for dead either.
	if s.awaitingPong && s.readPaused == nil {
		s.mu.Unlock()
		s.Abort(ReasonPingTimeout)
		return
	}
	s.awaitingPong = true
	// The ping goes ahead of everything queued so a backed-up queue
	// cannot starve the heartbeat.
	s.queue = append(s.queue, Frame{})
	copy(s.queue[1:], s.queue)
	s.queue[0] = pingFrame
	s.wakeLocked()
	s.heartbeat.Reset(s.srv.opts.PingTimeout)
	s.mu.Unlock()
}

func (s *Session) onPong() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.awaitingPong && s.state != stateClosed {
		s.awaitingPong = false
		s.heartbeat.Reset(s.srv.opts.PingInterval)
	}
}

// receive handles one inbound packet.
func (s *Session) receive(p Packet) {
	switch p.Type {
	case Message:
		s.recvMu.Lock()
		defer s.recvMu.Unlock()
		s.mu.Lock()
		open := s.state == stateOpen
		s.mu.Unlock()
		if open {
			s.handler.OnMessage(p.Data, p.Binary)
		}
	case Pong:
		if s.protocol == Protocol3 {
			s.Abort(ReasonTransportError) // the heartbeat runs the other way
			return
		}
		s.onPong()
	case Close:
		s.Abort(ReasonTransportClose)
	case Ping:
		if s.protocol == Protocol3 {
			s.onClientPing()
			return
		}
		// Clients answer pings in Engine.IO v4; they never send one
		// outside of an upgrade probe.
		s.Abort(ReasonTransportError)
	}
	// open, upgrade and noop packets are ignored.
}

// Close closes the session gracefully: what is queued is written first, then
// the transport is closed. The handler's OnClose gets "forced close".
func (s *Session) Close() { s.closeWithin(30 * time.Second) }

// closeWithin closes the session gracefully; a polling session that is not
// polled within grace is dropped.
func (s *Session) closeWithin(grace time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateOpen {
		return
	}
	s.state = stateClosing
	s.closingReason = ReasonForcedClose
	if s.transport == TransportWebSocket {
		if s.ws != nil { // else the handshake's upgrade starts the writer
			s.startWriterLocked()
		}
		return
	}
	// The close packet travels alone, in the poll after the one that
	// carries what is queued: a client handles a close packet before the
	// packets that shared its payload.
	if len(s.queue) == 0 {
		s.queue = append(s.queue, closeFrame)
		s.wakeLocked()
	}
	// A client that stopped polling never collects the close packet.
	s.closeTimer = time.AfterFunc(grace, func() { s.Abort(ReasonForcedClose) })
}

// Shutdown closes the session for a server shutdown: like Close, except
// that a polling client gets one second, not thirty, to collect the close
// packet: an active client polls again within milliseconds.
func (s *Session) Shutdown() { s.closeWithin(time.Second) }

// Abort closes the session at once with the given reason, discarding what is
// queued. A pending poll is answered with a close packet.
func (s *Session) Abort(reason string) {
	s.mu.Lock()
	if s.state == stateClosed {
		s.mu.Unlock()
		return
	}
	if s.state == stateClosing {
		reason = s.closingReason
	}
	s.state = stateClosed
	s.queue, s.queuedBytes = nil, 0
	if s.readPaused != nil {
		close(s.readPaused) // a POST waiting to go on sees the end
		s.readPaused = nil
	}
	if s.heartbeat != nil {
		s.heartbeat.Stop()
	}
	if s.closeTimer != nil {
		s.closeTimer.Stop()
	}
	if s.poll.get != nil {
		reply := closeFrame
		if reason == ReasonTransportClose {
			reply = noopFrame
		}
		s.queue = []Frame{reply}
		s.wakeLocked()
	}
	ws := s.ws
	s.mu.Unlock()

	s.cancel()
	if ws != nil {
		ws.CloseNow()
	}
	s.srv.remove(s)
	s.handler.OnClose(reason)
}

// closed reports whether the session has ended.
func (s *Session) closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == stateClosed
}
