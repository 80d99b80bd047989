package admin

import (
	"bytes"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/rallyhq/rally"
)

// tracked is what development mode remembers of a socket of this server:
// enough to tell the UI what changed, in the order it changed.
type tracked struct {
	id, nsp   string
	transport string
	rooms     []string
	data      []byte // the JSON of its data as last reported
	goneAt    time.Time
}

// tracker holds the tracked sockets. Its methods are the observer's, and
// only take its own lock.
type tracker struct {
	mu      sync.Mutex
	sockets map[*rally.Socket]*tracked
	polling map[*rally.Socket]struct{} // those last seen on polling
	// gone holds disconnected sockets until they left their rooms (the
	// UI needs room_left to forget them), by disconnection time.
	gone  map[*rally.Socket]*tracked
	goneQ []*rally.Socket
}

// goneGrace bounds how long a disconnected socket is remembered.
const goneGrace = 30 * time.Second

func newTracker() *tracker {
	return &tracker{
		sockets: make(map[*rally.Socket]*tracked),
		polling: make(map[*rally.Socket]struct{}),
		gone:    make(map[*rally.Socket]*tracked),
	}
}

// timestamp is how Node's Date arguments arrive: JSON ISO strings.
func timestamp() string { return time.Now().UTC().Format("2006-01-02T15:04:05.000Z") }

// observer returns the hub observer of the instrumentation.
func (in *Instrumentation) observer() *rally.Observer {
	o := &rally.Observer{
		ConnectionOpened: func(string) {
			if !in.closed.Load() {
				in.buf.push("rawConnection", "")
			}
		},
		ConnectionClosed: func(_, reason string) {
			if !in.closed.Load() {
				in.buf.push("rawDisconnection", reason)
			}
		},
		PacketIn: func(size int) {
			if !in.closed.Load() {
				in.buf.count(packetsIn, 1)
				in.buf.count(bytesIn, int64(size))
			}
		},
		PacketOut: func(size int) {
			if !in.closed.Load() {
				in.buf.count(packetsOut, 1)
				in.buf.count(bytesOut, int64(size))
			}
		},
		SocketConnected: func(s *rally.Socket) {
			if !in.closed.Load() {
				in.buf.push("connection", s.Namespace().Name())
				if in.tracker != nil {
					in.socketConnected(s)
				}
			}
		},
		SocketDisconnected: func(s *rally.Socket, reason string) {
			if !in.closed.Load() {
				in.buf.push("disconnection", s.Namespace().Name())
				if in.tracker != nil {
					in.socketDisconnected(s, reason)
				}
			}
		},
	}
	if in.tracker == nil {
		return o
	}
	o.RoomJoined = in.roomJoined
	o.RoomLeft = in.roomLeft
	o.SocketDataSet = func(s *rally.Socket) {
		in.enqueue(func() { in.emitDataChange(s) }) // in order with the other notifications
	}
	o.ConnectionUpgraded = func() {
		select {
		case in.upgrade <- struct{}{}:
		default: // a scan is due already
		}
	}
	o.NamespaceCreated = func(n *rally.Namespace) {
		if n == in.nsp {
			return // the UI's own events are not reported to it
		}
		n.OnAny(in.eventReceived)
		n.OnAnyOutgoing(in.eventSent)
	}
	return o
}

func (in *Instrumentation) socketConnected(s *rally.Socket) {
	t := &tracked{id: s.ID(), nsp: s.Namespace().Name(), transport: s.Transport(), rooms: []string{s.ID()}}
	clientID := s.ConnID()
	hs := s.Handshake()
	tr := in.tracker
	tr.mu.Lock()
	tr.sockets[s] = t
	if t.transport == rally.TransportPolling {
		tr.polling[s] = struct{}{}
	}
	tr.mu.Unlock()
	ser := serializedSocket{
		ID: t.id, ClientID: shortID(clientID), Transport: t.transport, Nsp: t.nsp,
		Handshake: serializeHandshake(hs), Rooms: []string{t.id},
	}
	ts := timestamp()
	in.enqueue(func() {
		data := s.Data()
		ser.Data = dataOf(data)
		if b, err := json.Marshal(data); err == nil {
			tr.mu.Lock()
			t.data = b
			tr.mu.Unlock()
		}
		in.nsp.Emit("socket_connected", ser, ts)
	})
}

func (in *Instrumentation) socketDisconnected(s *rally.Socket, reason string) {
	tr := in.tracker
	now := time.Now()
	tr.mu.Lock()
	t := tr.sockets[s]
	delete(tr.sockets, s)
	delete(tr.polling, s)
	if t != nil && len(t.rooms) > 0 {
		t.goneAt = now
		tr.gone[s] = t
		tr.goneQ = append(tr.goneQ, s)
	}
	for len(tr.goneQ) > 0 {
		old := tr.goneQ[0]
		if g := tr.gone[old]; g != nil && now.Sub(g.goneAt) < goneGrace {
			break
		}
		delete(tr.gone, old)
		tr.goneQ = tr.goneQ[1:]
	}
	tr.mu.Unlock()
	if t == nil {
		return
	}
	ts := timestamp()
	in.enqueue(func() { in.nsp.Emit("socket_disconnected", t.nsp, t.id, reason, ts) })
}

func (in *Instrumentation) roomJoined(s *rally.Socket, room string) {
	if in.closed.Load() {
		return
	}
	tr := in.tracker
	tr.mu.Lock()
	t := tr.sockets[s]
	added := t != nil && !slices.Contains(t.rooms, room)
	if added {
		t.rooms = append(t.rooms, room)
	}
	tr.mu.Unlock()
	if !added {
		return // not connected yet (it is told with its rooms), or known
	}
	ts := timestamp()
	in.enqueue(func() { in.nsp.Emit("room_joined", t.nsp, room, t.id, ts) })
}

func (in *Instrumentation) roomLeft(s *rally.Socket, room string) {
	if in.closed.Load() {
		return
	}
	tr := in.tracker
	tr.mu.Lock()
	t, live := tr.sockets[s], true
	if t == nil {
		t, live = tr.gone[s], false
	}
	i := -1
	if t != nil {
		i = slices.Index(t.rooms, room)
	}
	if i >= 0 {
		t.rooms = slices.Delete(t.rooms, i, i+1)
		if !live && len(t.rooms) == 0 {
			delete(tr.gone, s) // its goneQ entry goes when it is old
		}
	}
	tr.mu.Unlock()
	if i < 0 {
		return
	}
	ts := timestamp()
	in.enqueue(func() { in.nsp.Emit("room_left", t.nsp, room, t.id, ts) })
}

// eventArgs returns an event as the UI shows it: its name, then its
// arguments (their JSON as it came, or decoded values when it carries
// binary).
func eventArgs(e *rally.Event) []any {
	args := make([]any, 0, 1+e.Len())
	args = append(args, e.Name)
	if len(e.Attachments()) > 0 {
		return append(args, e.Values()...)
	}
	for i := range e.Len() {
		args = append(args, json.RawMessage(bytes.Clone(e.Raw(i))))
	}
	return args
}

func (in *Instrumentation) eventReceived(s *rally.Socket, e *rally.Event) {
	if in.closed.Load() {
		return
	}
	nsp, id, args, ts := s.Namespace().Name(), s.ID(), eventArgs(e), timestamp()
	in.enqueue(func() { in.nsp.Emit("event_received", nsp, id, args, ts) })
}

func (in *Instrumentation) eventSent(s *rally.Socket, e *rally.Event) {
	if in.closed.Load() {
		return
	}
	nsp, id, args, ts := s.Namespace().Name(), s.ID(), eventArgs(e), timestamp()
	in.enqueue(func() { in.nsp.Emit("event_sent", nsp, id, args, ts) })
}

// emitUpgrades tells the UI of the sockets whose connection left polling
// (the observer says that a connection upgraded, not which one).
func (in *Instrumentation) emitUpgrades() {
	tr := in.tracker
	tr.mu.Lock()
	candidates := make([]*rally.Socket, 0, len(tr.polling))
	for s := range tr.polling {
		candidates = append(candidates, s)
	}
	tr.mu.Unlock()
	for _, s := range candidates {
		transport := s.Transport()
		if transport == rally.TransportPolling {
			continue
		}
		tr.mu.Lock()
		t := tr.sockets[s]
		delete(tr.polling, s)
		if t != nil {
			t.transport = transport
		}
		tr.mu.Unlock()
		if t != nil {
			in.nsp.Emit("socket_updated", map[string]any{"id": t.id, "nsp": t.nsp, "transport": transport})
		}
	}
}

// emitDataChange tells the UI of a socket whose SetData value changed
// since it was last told.
func (in *Instrumentation) emitDataChange(s *rally.Socket) {
	data := s.Data()
	b, err := json.Marshal(data)
	if err != nil {
		return
	}
	tr := in.tracker
	tr.mu.Lock()
	t := tr.sockets[s]
	changed := t != nil && !bytes.Equal(t.data, b)
	if changed {
		t.data = b
	}
	tr.mu.Unlock()
	if changed {
		in.nsp.Emit("socket_updated", map[string]any{"id": t.id, "nsp": t.nsp, "data": dataOf(data)})
	}
}
