package admin

import (
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// aggregatedEvent is one entry of server_stats' aggregatedEvents: how many
// events of a type (and subtype) happened in the second starting at
// Timestamp (milliseconds since the epoch), as Node's EventBuffer counts
// them.
type aggregatedEvent struct {
	Timestamp int64  `json:"timestamp"`
	Type      string `json:"type"`
	SubType   string `json:"subType,omitempty"`
	Count     int64  `json:"count"`
}

// The counters kept per second without a lock: packets and bytes, which
// every message of every client adds to.
const (
	packetsIn = iota
	packetsOut
	bytesIn
	bytesOut
	numCounters
)

var counterTypes = [numCounters]string{"packetsIn", "packetsOut", "bytesIn", "bytesOut"}

// ringSeconds is how many seconds of packet counters are kept apart
// between two harvests (every two seconds).
const ringSeconds = 8

type secondSlot struct {
	sec  atomic.Int64
	vals [numCounters]atomic.Int64
}

type eventKey struct {
	sec          int64
	typ, subType string
}

// eventBuffer counts events per second until server_stats takes them.
// Packet and byte counts go to a ring of per-second slots of atomic
// counters (the hot path takes no lock but when a second begins); the rare
// events (connections, disconnections) to a map under a lock.
type eventBuffer struct {
	ring [ringSeconds]secondSlot

	mu      sync.Mutex
	pending map[eventKey]int64
	keys    []eventKey // in the order they came, as Node lists them
}

func newEventBuffer() *eventBuffer {
	b := &eventBuffer{pending: make(map[eventKey]int64)}
	for i := range b.ring {
		b.ring[i].sec.Store(-1)
	}
	return b
}

// count adds n to a packet or byte counter of the current second.
func (b *eventBuffer) count(counter int, n int64) {
	sec := time.Now().Unix()
	s := &b.ring[sec%ringSeconds]
	if s.sec.Load() != sec {
		b.mu.Lock()
		if s.sec.Load() != sec {
			b.harvestLocked(s)
			s.sec.Store(sec)
		}
		b.mu.Unlock()
	}
	s.vals[counter].Add(n)
}

// push counts one event of type typ and subType in the current second.
func (b *eventBuffer) push(typ, subType string) {
	k := eventKey{sec: time.Now().Unix(), typ: typ, subType: subType}
	b.mu.Lock()
	b.addLocked(k, 1)
	b.mu.Unlock()
}

func (b *eventBuffer) addLocked(k eventKey, n int64) {
	if _, ok := b.pending[k]; !ok {
		b.keys = append(b.keys, k)
	}
	b.pending[k] += n
}

// harvestLocked moves a slot's counts to pending.
func (b *eventBuffer) harvestLocked(s *secondSlot) {
	sec := s.sec.Load()
	if sec < 0 {
		return
	}
	for i := range s.vals {
		if n := s.vals[i].Swap(0); n != 0 {
			b.addLocked(eventKey{sec: sec, typ: counterTypes[i]}, n)
		}
	}
}

// take returns what was counted since the last take, and forgets it.
func (b *eventBuffer) take() []aggregatedEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.ring {
		b.harvestLocked(&b.ring[i])
	}
	out := make([]aggregatedEvent, 0, len(b.keys))
	for _, k := range b.keys {
		out = append(out, aggregatedEvent{Timestamp: k.sec * 1000, Type: k.typ, SubType: k.subType, Count: b.pending[k]})
	}
	clear(b.pending)
	b.keys = b.keys[:0]
	return out
}

// processStart approximates when the process started, for the uptime
// server_stats reports (Node's process.uptime()).
var processStart = time.Now()

// serverStats is the server_stats event.
type serverStats struct {
	ServerID            string             `json:"serverId"`
	Hostname            string             `json:"hostname"`
	PID                 int                `json:"pid"`
	Uptime              float64            `json:"uptime"`
	ClientsCount        int                `json:"clientsCount"`
	PollingClientsCount int                `json:"pollingClientsCount"`
	AggregatedEvents    []aggregatedEvent  `json:"aggregatedEvents"`
	Namespaces          []namespaceDetails `json:"namespaces"`
}

type namespaceDetails struct {
	Name         string `json:"name"`
	SocketsCount int    `json:"socketsCount"`
}

// emitStats emits this server's server_stats to the admin namespace
// (through the adapter: every server's UIs get it).
func (in *Instrumentation) emitStats() {
	st := in.hub.Stats()
	ev := serverStats{
		ServerID:            in.serverID,
		Hostname:            in.hostname,
		PID:                 os.Getpid(),
		Uptime:              time.Since(processStart).Seconds(),
		ClientsCount:        st.Connections,
		PollingClientsCount: st.Polling,
		AggregatedEvents:    in.buf.take(),
		Namespaces:          make([]namespaceDetails, 0, len(st.Namespaces)),
	}
	for _, n := range st.Namespaces {
		ev.Namespaces = append(ev.Namespaces, namespaceDetails{Name: n.Name, SocketsCount: n.Sockets})
	}
	in.nsp.Emit("server_stats", ev)
}
