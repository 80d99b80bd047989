package rally

import (
	"context"
	"encoding/json"
	"time"

	"github.com/rallyhq/rally/internal/parser"
)

// Recovery configures connection state recovery (Node's
// connectionStateRecovery): a client whose connection was lost, rather
// than closed on purpose, comes back within MaxDisconnectionDuration with
// its socket id, rooms and data, and first receives every event it missed,
// in order. The official client (4.6+) does its part unchanged; so does
// rally's Go client.
//
// It works through the namespace's adapter. With no Options.Adapter, the
// hub keeps sessions and missed packets in memory, bounded by the fields
// below. An adapter that spans servers keeps them if it implements
// RecoveryAdapter (redisadapter's Redis Streams adapter does, as
// @socket.io/redis-streams-adapter); with one that does not, such as the
// classic Redis adapter, sockets are never recovered, as in Node.
//
// What is recovered: an event sent to a socket or broadcast, without an
// ack and not Volatile, is kept with an offset, appended to its arguments
// as a last string (clients record the last one they received; their
// handlers see one argument more). A socket that disconnects for a
// transport close or error, a ping timeout, a closed connection
// (ReasonForcedClose, ReasonForcedServerClose, ReasonQueueFull) or a
// shutdown keeps its session; one disconnected by the client or the server
// on purpose does not. A client that reconnects with the session's private
// id and the offset of the last event it received gets the session back:
// Socket.Recovered reports true, and the events sent to its rooms since
// that offset are delivered first, then the CONNECT reply (as from Node:
// the official client delivers them before its "connect" event), then
// what its OnConnect handlers send. Otherwise, when the session
// expired, its offset is no longer kept, it missed more than
// MaxMissedPackets, or it never received an event, the client gets a new
// socket, as without recovery. A client that comes back while this server
// still holds its old connection (the failure not seen yet) presents the
// private id of a socket that is connected here: that connection is
// closed, as ReasonTransportClose, and the client takes its session.
type Recovery struct {
	// MaxDisconnectionDuration is how long a session and the events sent
	// meanwhile are kept (2 minutes).
	MaxDisconnectionDuration time.Duration
	// RunMiddleware runs the connect middleware for recovered sockets
	// too. By default they skip it, as in Node (skipMiddlewares: true):
	// the private session id a client presents is proof enough.
	RunMiddleware bool
	// MaxMissedPackets is the most events one session may have missed and
	// still be recovered (10,000). They must also fit in half of
	// Options.MaxQueuedBytes, since they are queued at once.
	MaxMissedPackets int
	// MaxBufferedBytes bounds the events the in-memory store keeps per
	// namespace, counted by payload size (32 MiB); the oldest go first.
	MaxBufferedBytes int64
	// MaxSessions bounds the sessions the in-memory store keeps per
	// namespace (100,000); the oldest go first.
	MaxSessions int
}

// withDefaults returns a copy of r with its zero fields set.
func (r Recovery) withDefaults() *Recovery {
	if r.MaxDisconnectionDuration <= 0 {
		r.MaxDisconnectionDuration = 2 * time.Minute
	}
	if r.MaxMissedPackets <= 0 {
		r.MaxMissedPackets = 10_000
	}
	if r.MaxBufferedBytes <= 0 {
		r.MaxBufferedBytes = 32 << 20
	}
	if r.MaxSessions <= 0 {
		r.MaxSessions = 100_000
	}
	return &r
}

// Session is the state of a socket kept for connection state recovery.
type Session struct {
	// SID is the socket's id, PID its private session id: the client
	// presents the PID to recover the socket.
	SID, PID string
	// Rooms lists the socket's rooms, its own id included.
	Rooms []string
	// Data is the socket's SetData value. An adapter that stores sessions
	// out of the process keeps its JSON form, and restores it decoded into
	// a Go value, as SocketInfo.Data.
	Data any
	// MissedPackets, set by RestoreSession, are the events sent to the
	// session's rooms after the client's offset, in order, each with its
	// own offset as last argument (see Packet.WithOffset).
	MissedPackets []Packet
}

// RecoveryAdapter is an Adapter that keeps sessions for connection state
// recovery. Its Broadcast records each event it is given that is not
// Volatile and appends its offset to it (Packet.WithOffset) before
// delivering it, when Recovery is enabled (LocalAdapter.Recovery).
// Sockets emit through the adapter then, to the room of their id, so that
// those events are recorded too.
type RecoveryAdapter interface {
	Adapter
	// PersistSession keeps s for LocalAdapter.Recovery's
	// MaxDisconnectionDuration. It runs on the socket's goroutine, when
	// the socket disconnected for a recoverable reason, before its
	// OnDisconnect handlers.
	PersistSession(ctx context.Context, s *Session) error
	// RestoreSession takes the session whose PID is pid, with the events
	// its rooms missed after offset. It returns nil and no error when
	// there is no such session, it expired, or offset is not known; a
	// session is restored once.
	RestoreSession(ctx context.Context, pid, offset string) (*Session, error)
}

// WithOffset returns p with offset appended to its arguments, as recovery
// marks the events it keeps.
func (p Packet) WithOffset(offset string) Packet {
	quoted, _ := json.Marshal(offset) // a string always encodes
	data := make(json.RawMessage, 0, len(p.Data)+len(quoted)+1)
	data = append(data, p.Data[:len(p.Data)-1]...)
	data = append(data, ',')
	data = append(data, quoted...)
	p.Data = append(data, ']')
	return p
}

// Recovery returns the hub's connection state recovery settings, with
// defaults set, or nil when recovery is off.
func (a *LocalAdapter) Recovery() *Recovery { return a.nsp.hub.recovery }

// recoverableReasons are the disconnects after which a socket keeps its
// session: the client did not leave on purpose, nor did the server send
// it away.
var recoverableReasons = map[string]bool{
	ReasonTransportError:     true,
	ReasonTransportClose:     true,
	ReasonForcedClose:        true,
	ReasonPingTimeout:        true,
	ReasonServerShuttingDown: true,
	ReasonForcedServerClose:  true,
	ReasonQueueFull:          true,
}

// recoveryAuth returns the private session id and offset a client put in
// its CONNECT payload, when both are strings.
func recoveryAuth(auth json.RawMessage) (pid, offset string, ok bool) {
	if len(auth) == 0 {
		return "", "", false
	}
	var fields struct {
		PID    json.RawMessage `json:"pid"`
		Offset json.RawMessage `json:"offset"`
	}
	if json.Unmarshal(auth, &fields) != nil {
		return "", "", false
	}
	if json.Unmarshal(fields.PID, &pid) != nil || json.Unmarshal(fields.Offset, &offset) != nil {
		return "", "", false // absent, or not strings
	}
	return pid, offset, true
}

// recoveryAdapter returns the namespace's adapter if it keeps sessions and
// recovery is on.
func (n *Namespace) recoveryAdapter() RecoveryAdapter {
	if n.hub.recovery == nil {
		return nil
	}
	ra, _ := n.adapter.(RecoveryAdapter)
	return ra
}

// restoreTimeout bounds the adapter's restoring of a session.
const restoreTimeout = 10 * time.Second

// restore looks up the session the client asks to recover and, if found,
// gives the socket its id, private id and data, and returns it with the
// client's offset. The events it missed are delivered by
// connectRecovered.
func (s *Socket) restore() (sess *Session, offset string) {
	ra := s.nsp.recoveryAdapter()
	if ra == nil {
		return nil, ""
	}
	pid, offset, ok := recoveryAuth(s.handshake.Auth)
	if !ok {
		return nil, ""
	}
	ctx, cancel := context.WithTimeout(s.ctx, restoreTimeout)
	defer cancel()
	sess, err := s.takeSession(ctx, ra, pid, offset)
	if err == nil && sess == nil {
		if old := s.nsp.socketByPID(pid); old != nil && old.conn != s.conn {
			// The client came back on a new connection before this
			// server saw its old one fail, or kept its session: that
			// one is gone.
			old.conn.abort(ReasonTransportClose)
			select {
			case <-old.persisted:
				sess, err = s.takeSession(ctx, ra, pid, offset)
			case <-ctx.Done():
			}
		}
	}
	if err != nil {
		s.nsp.hub.reportError(s, &RecoveryError{Err: err})
		return nil, ""
	}
	if sess == nil || sess.SID == "" || !s.nsp.hub.canReplay(sess.MissedPackets) {
		return nil, ""
	}
	s.id, s.pid, s.recovered = sess.SID, sess.PID, true
	s.SetData(sess.Data)
	return sess, offset
}

// takeSession restores the session pid through the adapter.
func (s *Socket) takeSession(ctx context.Context, ra RecoveryAdapter, pid, offset string) (*Session, error) {
	if m, ok := ra.(*memoryAdapter); ok {
		return m.take(pid, offset), nil // attach delivers what it missed
	}
	return ra.RestoreSession(ctx, pid, offset)
}

// canReplay reports whether missed events may be sent to a recovered
// socket: at most MaxMissedPackets of them, and at most half of
// MaxQueuedBytes in all. More would fill the client's queue before it
// got the CONNECT reply (they come first): it would be disconnected again
// and again, never getting further.
func (h *Hub) canReplay(missed []Packet) bool {
	if len(missed) > h.recovery.MaxMissedPackets {
		return false
	}
	limit := h.opts.MaxQueuedBytes
	if limit == 0 {
		limit = 16 * h.opts.MaxHTTPBufferSize // the engine's default
	}
	if limit < 0 {
		return true
	}
	var size int64
	for _, p := range missed {
		size += packetSize(p)
	}
	return size <= limit/2
}

// reset makes a socket whose recovery failed a new one.
func (s *Socket) reset() {
	s.id, s.pid, s.recovered = s.conn.socketID(s.nsp), newSocketID(), false
	s.SetData(nil)
}

// RecoveryError reports an adapter's failure to persist or restore a
// session; the socket was not recovered, or will not be.
type RecoveryError struct {
	Err error
}

func (e *RecoveryError) Error() string { return "rally: connection state recovery: " + e.Err.Error() }

func (e *RecoveryError) Unwrap() error { return e.Err }

// connectRecovered connects a socket restored from sess: it joins the
// session's rooms and gets the missed events, then the CONNECT reply, at
// once with respect to broadcasts. ok is false, nothing having been done,
// when the missed events can no longer be delivered; connected is false
// when the connection closed meanwhile.
func (s *Socket) connectRecovered(sess *Session, offset string) (ok, connected bool) {
	if m, isMemory := s.nsp.adapter.(*memoryAdapter); isMemory {
		return m.attach(s, sess, offset)
	}
	return true, s.attach(sess.Rooms, sess.MissedPackets)
}

// attach connects s in rooms, then sends the missed events and the
// CONNECT reply. The missed events come first, as from Node: the official
// client keeps events that arrive before the reply and delivers them
// before its "connect" event.
func (s *Socket) attach(rooms []string, missed []Packet) (connected bool) {
	if !s.nsp.connect(s, rooms) {
		s.connectFailed()
		return false
	}
	for _, p := range missed {
		s.conn.sess.Send(s.conn.frames(s.nsp.hub.encodeFrames(s.nsp.local.packet(p, parser.NoID)))...)
	}
	s.sendConnectReply()
	return true
}

// persist keeps the session of a socket that disconnected for reason, if
// recoverable.
func (s *Socket) persist(reason string) {
	if s.persisted != nil {
		defer func() {
			s.nsp.forgetPID(s)
			close(s.persisted)
		}()
	}
	ra := s.nsp.recoveryAdapter()
	if ra == nil || !recoverableReasons[reason] {
		return
	}
	sess := &Session{SID: s.id, PID: s.pid, Rooms: s.Rooms(), Data: s.Data()}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), restoreTimeout)
	defer cancel()
	if err := ra.PersistSession(ctx, sess); err != nil {
		s.nsp.hub.reportError(s, &RecoveryError{Err: err})
	}
}

// Recovered reports whether the socket is a disconnected one recovered
// (see Options.ConnectionStateRecovery): same id, rooms and data, and the
// events it missed were delivered.
func (s *Socket) Recovered() bool { return s.recovered }
