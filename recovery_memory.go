package rally

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"
)

// memoryAdapter is the LocalAdapter with connection state recovery: it
// keeps the sessions of sockets that disconnected and the events sent
// meanwhile, in memory, for one server (Node's SessionAwareAdapter).
//
// Recording an event and delivering it happen under one lock, as do
// collecting a recovered socket's missed events and connecting it, so
// that every socket receives events in offset order and a recovered one
// gets each exactly once, from the log or live.
type memoryAdapter struct {
	*LocalAdapter
	opts *Recovery

	mu       sync.Mutex
	log      []loggedPacket // by offset; log[0] is the oldest kept
	seq      uint64         // offset of the last event recorded
	bytes    int64          // payload bytes in log
	sessions map[string]storedSession
	order    []sessionRef // sessions by disconnect time, with stale entries
	timer    *time.Timer  // prunes what expired; nil when nothing is kept
	closed   bool
}

// loggedPacket is an event kept for recovery, with what selected its
// recipients.
type loggedPacket struct {
	seq           uint64
	at            time.Time
	p             Packet
	rooms, except []string
	size          int64
}

type storedSession struct {
	s  *Session
	at time.Time
}

type sessionRef struct {
	pid string
	at  time.Time
}

var _ RecoveryAdapter = (*memoryAdapter)(nil)

func newMemoryAdapter(local *LocalAdapter, opts *Recovery) *memoryAdapter {
	return &memoryAdapter{LocalAdapter: local, opts: opts, sessions: make(map[string]storedSession)}
}

// Broadcast records p, unless volatile, then sends it to the selected
// sockets.
func (m *memoryAdapter) Broadcast(ctx context.Context, p Packet, opts BroadcastOptions) error {
	if opts.Volatile {
		return m.LocalAdapter.Broadcast(ctx, p, opts)
	}
	m.mu.Lock()
	m.seq++
	p = p.WithOffset(strconv.FormatUint(m.seq, 36))
	lp := loggedPacket{seq: m.seq, at: time.Now(), p: p, rooms: slices.Clone(opts.Rooms), except: slices.Clone(opts.Except)}
	lp.size = packetSize(p) + int64(len(lp.rooms)+len(lp.except))*16
	m.log = append(m.log, lp)
	m.bytes += lp.size
	m.pruneLocked(lp.at)
	d := m.deliver(p, opts)
	m.mu.Unlock()
	m.notify(p, d)
	return nil
}

// packetSize is what a packet's payload weighs.
func packetSize(p Packet) int64 {
	n := int64(len(p.Data))
	for _, a := range p.Attachments {
		n += int64(len(a))
	}
	return n
}

// PersistSession keeps s for the maximum disconnection duration.
func (m *memoryAdapter) PersistSession(_ context.Context, s *Session) error {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.sessions[s.PID] = storedSession{s: s, at: now}
	m.order = append(m.order, sessionRef{pid: s.PID, at: now})
	m.pruneLocked(now)
	return nil
}

// RestoreSession takes a session with its missed events. The hub does
// not use it (see take and attach), but it is what an adapter wrapping
// this one would call.
func (m *memoryAdapter) RestoreSession(_ context.Context, pid, offset string) (*Session, error) {
	s := m.take(pid, offset)
	if s == nil {
		return nil, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	missed, ok := m.missedLocked(s, offset)
	if !ok {
		return nil, nil
	}
	s.MissedPackets = missed
	return s, nil
}

// take removes and returns the session pid if it has not expired and
// offset is kept; attach delivers what it missed.
func (m *memoryAdapter) take(pid, offset string) *Session {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pruneLocked(now)
	stored, ok := m.sessions[pid]
	if !ok {
		return nil
	}
	if _, ok := m.indexLocked(offset); !ok {
		return nil
	}
	delete(m.sessions, pid)
	return stored.s
}

// attach connects a socket whose session take returned: it gets the
// events its rooms missed after the offset, and then only live ones.
func (m *memoryAdapter) attach(s *Socket, sess *Session, offset string) (ok, connected bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pruneLocked(time.Now())
	missed, ok := m.missedLocked(sess, offset)
	if !ok || !s.nsp.hub.canReplay(missed) {
		return false, false
	}
	return true, s.attach(sess.Rooms, missed)
}

// missedLocked returns the events of the log after offset that reach
// sess's rooms, and false when offset is no longer kept.
func (m *memoryAdapter) missedLocked(sess *Session, offset string) ([]Packet, bool) {
	i, ok := m.indexLocked(offset)
	if !ok {
		return nil, false
	}
	var missed []Packet
	for _, lp := range m.log[i+1:] {
		if reaches(sess.Rooms, lp.rooms, lp.except) {
			missed = append(missed, lp.p)
		}
	}
	return missed, true
}

// reaches reports whether an event sent to rooms except except reaches a
// socket in socketRooms, as the official server decides for missed
// packets.
func reaches(socketRooms, rooms, except []string) bool {
	included := len(rooms) == 0
	for _, r := range socketRooms {
		if slices.Contains(except, r) {
			return false
		}
		if !included && slices.Contains(rooms, r) {
			included = true
		}
	}
	return included
}

// indexLocked returns the index in the log of the event at offset.
func (m *memoryAdapter) indexLocked(offset string) (int, bool) {
	seq, err := strconv.ParseUint(offset, 36, 64)
	if err != nil || len(m.log) == 0 || seq < m.log[0].seq || seq > m.seq {
		return 0, false
	}
	return int(seq - m.log[0].seq), true
}

// pruneLocked forgets the events and sessions that expired or are over
// the bounds, and arms the timer that will prune the rest.
func (m *memoryAdapter) pruneLocked(now time.Time) {
	expired := now.Add(-m.opts.MaxDisconnectionDuration)
	drop := 0
	for drop < len(m.log) && (m.log[drop].at.Before(expired) || m.bytes > m.opts.MaxBufferedBytes) {
		m.bytes -= m.log[drop].size
		drop++
	}
	if drop > 0 {
		clear(m.log[:drop])
		m.log = m.log[drop:]
		if cap(m.log) > 64 && len(m.log) < cap(m.log)/4 {
			m.log = slices.Clone(m.log)
		}
	}
	drop = 0
	for drop < len(m.order) {
		ref := m.order[drop]
		stored, live := m.sessions[ref.pid]
		current := live && stored.at.Equal(ref.at)
		if current && !ref.at.Before(expired) && len(m.sessions) <= m.opts.MaxSessions {
			break
		}
		if current {
			delete(m.sessions, ref.pid)
		}
		drop++
	}
	if drop > 0 {
		clear(m.order[:drop])
		m.order = m.order[drop:]
	}
	if len(m.order) > 2*len(m.sessions)+64 {
		m.order = slices.DeleteFunc(m.order, func(ref sessionRef) bool {
			stored, live := m.sessions[ref.pid]
			return !live || !stored.at.Equal(ref.at)
		})
	}
	m.armLocked()
}

// armLocked schedules the next pruning at the earliest expiry.
func (m *memoryAdapter) armLocked() {
	var next time.Time
	if len(m.log) > 0 {
		next = m.log[0].at
	}
	if len(m.order) > 0 && (next.IsZero() || m.order[0].at.Before(next)) {
		next = m.order[0].at
	}
	if next.IsZero() || m.closed {
		if m.timer != nil {
			m.timer.Stop()
			m.timer = nil
		}
		return
	}
	wait := time.Until(next.Add(m.opts.MaxDisconnectionDuration)) + time.Second
	if m.timer == nil {
		m.timer = time.AfterFunc(wait, m.prune)
	} else {
		m.timer.Reset(wait)
	}
}

func (m *memoryAdapter) prune() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pruneLocked(time.Now())
}

// Close forgets every session and event.
func (m *memoryAdapter) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.log, m.bytes, m.sessions, m.order = nil, 0, map[string]storedSession{}, nil
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
	return m.LocalAdapter.Close()
}
