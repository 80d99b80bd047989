package client_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
)

// wait bounds every wait of these tests: long, for a loaded machine.
const wait = 15 * time.Second

func ctxWait(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

// recv returns the next value of ch, failing the test after wait.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("no %s within %v", what, wait)
		panic("unreachable")
	}
}

// waitUntil polls cond until it holds, failing the test after wait.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s within %v", what, wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cutListener remembers the connections it accepted, so that the test can
// cut them all at once, as a network failure does, and keep cutting new
// ones until the network is back.
type cutListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
	down  bool
}

func (l *cutListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		down := l.down
		if !down {
			l.conns = append(l.conns, c)
		}
		l.mu.Unlock()
		if !down {
			return c, nil
		}
		c.Close()
	}
}

// cut closes every connection accepted so far, and those accepted later
// until heal.
func (l *cutListener) cut() {
	l.mu.Lock()
	conns := l.conns
	l.conns = nil
	l.down = true
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// heal ends a cut.
func (l *cutListener) heal() {
	l.mu.Lock()
	l.down = false
	l.mu.Unlock()
}

// cutServer serves a hub on an httptest.Server whose connections the test
// can cut and whose Engine.IO handshakes it can refuse, as a server that
// is down does.
type cutServer struct {
	*httptest.Server
	hub    *rally.Hub
	ln     *cutListener
	client *http.Client // with a connection pool of its own
	refuse atomic.Bool  // handshakes fail with 503

	mu         sync.Mutex
	handshakes []time.Time // arrival of every handshake, refused or not
}

func newCutServer(t *testing.T, hub *rally.Hub) *cutServer {
	t.Helper()
	cs := &cutServer{hub: hub}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(cs.serve))
	cs.ln = &cutListener{Listener: ts.Listener}
	ts.Listener = cs.ln
	ts.Start()
	cs.Server = ts
	tr := &http.Transport{}
	cs.client = &http.Client{Transport: tr}
	t.Cleanup(func() {
		hub.Close()
		ts.Close()
		tr.CloseIdleConnections()
	})
	return cs
}

func (cs *cutServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("sid") == "" {
		cs.mu.Lock()
		cs.handshakes = append(cs.handshakes, time.Now())
		cs.mu.Unlock()
		if cs.refuse.Load() {
			http.Error(w, "down for the test", http.StatusServiceUnavailable)
			return
		}
	}
	cs.hub.ServeHTTP(w, r)
}

// down refuses handshakes; up accepts them again and ends a cut.
func (cs *cutServer) down() { cs.refuse.Store(true) }

func (cs *cutServer) up() {
	cs.refuse.Store(false)
	cs.ln.heal()
}

func (cs *cutServer) handshakeTimes() []time.Time {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return slices.Clone(cs.handshakes)
}

// opts returns fast reconnection options on the server's HTTP client.
func (cs *cutServer) opts(transports []string) *client.Options {
	return &client.Options{
		Transports:           transports,
		HTTPClient:           cs.client,
		ReconnectionDelay:    20 * time.Millisecond,
		ReconnectionDelayMax: 100 * time.Millisecond,
	}
}

// manager returns a manager closed when the test ends.
func (cs *cutServer) manager(t *testing.T, opts *client.Options) *client.Manager {
	t.Helper()
	m, err := client.NewManager(cs.URL, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// life records a client socket's connections and disconnections.
type life struct {
	connects    chan string // the socket's id at each connect
	disconnects chan string // reasons
	refusals    chan error
}

func watch(s *client.Socket) *life {
	l := &life{connects: make(chan string, 64), disconnects: make(chan string, 64), refusals: make(chan error, 64)}
	s.OnConnect(func() { l.connects <- s.ID() })
	s.OnDisconnect(func(reason string) { l.disconnects <- reason })
	s.OnConnectError(func(err error) { l.refusals <- err })
	return l
}

// managerLog records a manager's reconnection events.
type managerLog struct {
	attempts   chan int
	reconnects chan int
	errors     chan error
	failed     chan struct{}
}

func watchManager(m *client.Manager) *managerLog {
	l := &managerLog{attempts: make(chan int, 256), reconnects: make(chan int, 64), errors: make(chan error, 256), failed: make(chan struct{}, 8)}
	m.OnReconnectAttempt(func(n int) { l.attempts <- n })
	m.OnReconnect(func(n int) { l.reconnects <- n })
	m.OnReconnectError(func(err error) { l.errors <- err })
	m.OnReconnectFailed(func() { l.failed <- struct{}{} })
	return l
}

// arrivals records the "n" events a hub's namespaces receive.
type arrivals struct {
	mu  sync.Mutex
	got map[string][]arrival // by namespace
}

type arrival struct {
	id string
	n  int
}

func (a *arrivals) add(nsp, id string, n int) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.got == nil {
		a.got = make(map[string][]arrival)
	}
	a.got[nsp] = append(a.got[nsp], arrival{id, n})
}

func (a *arrivals) of(nsp string) []arrival {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.got[nsp])
}

// testHub returns a hub whose namespaces record "n", answer "n?" and
// "sync" with the value and the socket id, and close the connection on
// "cut".
func testHub(a *arrivals, namespaces ...string) *rally.Hub {
	hub := rally.NewHub(nil)
	for _, name := range namespaces {
		nsp := hub.Of(name)
		nsp.On("n", func(s *rally.Socket, n int) { a.add(name, s.ID(), n) })
		nsp.On("n?", func(s *rally.Socket, n int) int {
			a.add(name, s.ID(), n)
			return n
		})
		nsp.On("sync", func(s *rally.Socket) string { return s.ID() })
		nsp.On("cut", func(s *rally.Socket) { s.CloseConnection() })
	}
	return hub
}

// syncID makes a round trip on c and returns the id the server knows it
// by: every event c emitted before has been handled.
func syncID(t *testing.T, c *client.Socket) string {
	t.Helper()
	r, err := c.EmitWithAck(ctxWait(t), "sync")
	var id string
	if err != nil || r.Decode(&id) != nil {
		t.Fatalf("sync on %s: %v %v", c.Namespace(), r.Values(), err)
	}
	return id
}
