package rally

import (
	"cmp"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/rallyhq/rally/internal/engineio"
)

// Observer receives what a hub does, for monitoring: metrics exporters and
// the admin UI (see the admin package) are built on it. Every field is
// optional; a hub without observers pays nothing but a nil check. The
// functions run on the hub's goroutines, concurrently, sometimes while
// the hub holds locks of the socket concerned: they must be quick, must
// not block, and must not call back into the socket or namespace they are
// told about (hand such work to a goroutine).
type Observer struct {
	// ConnectionOpened: a client opened an Engine.IO connection over
	// transport (TransportPolling or TransportWebSocket).
	ConnectionOpened func(transport string)
	// ConnectionRefused: a request was refused with an Engine.IO error
	// code and message (see Options.OnConnectionError).
	ConnectionRefused func(code int, message string)
	// ConnectionUpgraded: a connection moved from polling to websocket.
	ConnectionUpgraded func()
	// ConnectionClosed: a connection ended on transport, for reason
	// (ReasonTransportClose, ReasonPingTimeout, ReasonQueueFull…).
	ConnectionClosed func(transport, reason string)
	// PacketIn and PacketOut: an Engine.IO message with size bytes of
	// data (its type byte not counted) was read from a client, or queued
	// for one (a broadcast counts once per recipient; attachments count
	// as messages of their own).
	PacketIn  func(size int)
	PacketOut func(size int)

	// SocketConnected and SocketDisconnected: a socket joined or left its
	// namespace, with the disconnect reason.
	SocketConnected    func(s *Socket)
	SocketDisconnected func(s *Socket, reason string)
	// RoomJoined and RoomLeft: a socket joined or left a room (its own id
	// room included).
	RoomJoined func(s *Socket, room string)
	RoomLeft   func(s *Socket, room string)
	// SocketDataSet: SetData was called on a socket (s.Data() has the
	// new value).
	SocketDataSet func(s *Socket)

	// Broadcast: an event was sent to the selected sockets of this server
	// (those an adapter forwards from other servers included), reaching
	// recipients of them.
	Broadcast func(n *Namespace, recipients int)
	// VolatileDropped: a Volatile event was dropped for a socket that
	// could not take it at once.
	VolatileDropped func(n *Namespace)
	// AckRoundTrip: an emit with an ack (Socket.EmitWithAck, or
	// Broadcast.EmitWithAck for all its recipients) ended after d, with
	// err nil when every answer came.
	AckRoundTrip func(n *Namespace, d time.Duration, err error)

	// NamespaceCreated: a namespace was created (Of, or a child of
	// OfMatch); Observe also calls it for those that exist already. It
	// runs under the hub's lock, so that it sees every namespace once:
	// it may register handlers and listeners on n, but must not call
	// the hub.
	NamespaceCreated func(n *Namespace)
	// Adapter: an adapter reported what it did (LocalAdapter.Report).
	Adapter func(n *Namespace, e AdapterEvent)
}

// AdapterEvent is what an adapter that spans servers reports of its work.
type AdapterEvent struct {
	// Kind is AdapterPublish, AdapterReceive, AdapterError or
	// AdapterTimeout.
	Kind string
	// Err is the error of AdapterError and AdapterTimeout.
	Err error
}

// The kinds of AdapterEvent.
const (
	AdapterPublish = "publish" // a message sent to the other servers
	AdapterReceive = "receive" // a message read from the adapter's transport (its own echoes included)
	AdapterError   = "error"   // a message that could not be sent or read
	AdapterTimeout = "timeout" // a request the other servers did not all answer in time
)

// Report hands e to the hub's observers; adapters that span servers call
// it.
func (a *LocalAdapter) Report(e AdapterEvent) {
	for _, o := range a.nsp.hub.observers() {
		if o.Adapter != nil {
			o.Adapter(a.nsp, e)
		}
	}
}

// observerList holds a hub's observers; it is replaced, never changed.
type observerList = atomic.Pointer[[]*Observer]

// Observe adds an observer, until stop is called. Its NamespaceCreated, if
// set, is called at once for every namespace that exists. After stop
// returns, o is called no more, but for calls already under way.
func (h *Hub) Observe(o *Observer) (stop func()) {
	h.mu.Lock()
	var list []*Observer
	if old := h.obs.Load(); old != nil {
		list = slices.Clone(*old)
	}
	list = append(list, o)
	h.obs.Store(&list)
	defer h.mu.Unlock()
	stop = func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if old := h.obs.Load(); old != nil {
			list := slices.DeleteFunc(slices.Clone(*old), func(x *Observer) bool { return x == o })
			h.obs.Store(&list)
		}
	}
	if o.NamespaceCreated != nil {
		existing := slices.SortedFunc(maps.Values(h.namespaces), func(a, b *Namespace) int { return cmp.Compare(a.name, b.name) })
		for _, n := range existing {
			o.NamespaceCreated(n)
		}
	}
	return stop
}

// observers returns the hub's observers, nil when there are none.
func (h *Hub) observers() []*Observer {
	if l := h.obs.Load(); l != nil {
		return *l
	}
	return nil
}

func (h *Hub) notePacketIn(size int) {
	for _, o := range h.observers() {
		if o.PacketIn != nil {
			o.PacketIn(size)
		}
	}
}

func (h *Hub) notePacketOut(size int) {
	for _, o := range h.observers() {
		if o.PacketOut != nil {
			o.PacketOut(size)
		}
	}
}

func (h *Hub) noteConnectionOpened(transport string) {
	for _, o := range h.observers() {
		if o.ConnectionOpened != nil {
			o.ConnectionOpened(transport)
		}
	}
}

func (h *Hub) noteConnectionRefused(code int, message string) {
	for _, o := range h.observers() {
		if o.ConnectionRefused != nil {
			o.ConnectionRefused(code, message)
		}
	}
}

func (h *Hub) noteConnectionUpgraded() {
	for _, o := range h.observers() {
		if o.ConnectionUpgraded != nil {
			o.ConnectionUpgraded()
		}
	}
}

func (h *Hub) noteConnectionClosed(transport, reason string) {
	for _, o := range h.observers() {
		if o.ConnectionClosed != nil {
			o.ConnectionClosed(transport, reason)
		}
	}
}

func (h *Hub) noteSocketConnected(s *Socket) {
	for _, o := range h.observers() {
		if o.SocketConnected != nil {
			o.SocketConnected(s)
		}
	}
}

func (h *Hub) noteSocketDataSet(s *Socket) {
	for _, o := range h.observers() {
		if o.SocketDataSet != nil {
			o.SocketDataSet(s)
		}
	}
}

func (h *Hub) noteSocketDisconnected(s *Socket, reason string) {
	for _, o := range h.observers() {
		if o.SocketDisconnected != nil {
			o.SocketDisconnected(s, reason)
		}
	}
}

// noteRooms tells the observers of rooms joined (or left) by s.
func (h *Hub) noteRooms(s *Socket, rooms []string, joined bool) {
	for _, o := range h.observers() {
		f := o.RoomLeft
		if joined {
			f = o.RoomJoined
		}
		if f == nil {
			continue
		}
		for _, room := range rooms {
			f(s, room)
		}
	}
}

func (h *Hub) noteBroadcast(n *Namespace, recipients int) {
	for _, o := range h.observers() {
		if o.Broadcast != nil {
			o.Broadcast(n, recipients)
		}
	}
}

func (h *Hub) noteVolatileDropped(n *Namespace) {
	for _, o := range h.observers() {
		if o.VolatileDropped != nil {
			o.VolatileDropped(n)
		}
	}
}

func (h *Hub) noteAckRoundTrip(n *Namespace, start time.Time, err error) {
	for _, o := range h.observers() {
		if o.AckRoundTrip != nil {
			o.AckRoundTrip(n, time.Since(start), err)
		}
	}
}

func (h *Hub) noteNamespaceCreated(n *Namespace) {
	for _, o := range h.observers() {
		if o.NamespaceCreated != nil {
			o.NamespaceCreated(n)
		}
	}
}

// Stats is a snapshot of a hub's connections.
type Stats struct {
	// Connections counts the open Engine.IO connections, Polling those of
	// them on the polling transport.
	Connections, Polling int
	// QueuedBytes is what waits to be written to clients, in all.
	QueuedBytes int64
	// Namespaces lists the namespaces by name, with their sockets.
	Namespaces []NamespaceStats
}

// NamespaceStats counts the connected sockets of a namespace on this
// server.
type NamespaceStats struct {
	Name    string
	Sockets int
}

// Stats returns a snapshot of the hub's connections. It visits every
// connection: call it every few seconds, not per event.
func (h *Hub) Stats() Stats {
	h.mu.RLock()
	sessions := make([]*engineio.Session, 0, len(h.conns))
	for c := range h.conns {
		sessions = append(sessions, c.sess)
	}
	h.mu.RUnlock()
	var st Stats
	st.Connections = len(sessions)
	for _, sess := range sessions {
		if sess.Transport() == TransportPolling {
			st.Polling++
		}
		st.QueuedBytes += sess.Queued()
	}
	for _, n := range h.Namespaces() {
		n.mu.RLock()
		st.Namespaces = append(st.Namespaces, NamespaceStats{Name: n.name, Sockets: len(n.sockets)})
		n.mu.RUnlock()
	}
	return st
}

// Namespaces returns the hub's namespaces, by name.
func (h *Hub) Namespaces() []*Namespace {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return slices.SortedFunc(maps.Values(h.namespaces), func(a, b *Namespace) int { return cmp.Compare(a.name, b.name) })
}

// ConnID returns the Engine.IO session id of the socket's connection,
// which its sockets of every namespace share. Whoever knows it can act as
// the client on the polling transport: show it to no one but operators.
func (s *Socket) ConnID() string { return s.conn.sess.ID() }
