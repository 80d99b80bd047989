// Package sockettest helps test rally handlers: it serves a Hub on an
// httptest.Server, connects real clients to it over real transports, and
// waits for the events they receive.
//
//	func TestChat(t *testing.T) {
//		hub := rally.NewHub(nil)
//		hub.On("chat", func(s *rally.Socket, text string) { s.Broadcast().Emit("chat", text) })
//		srv := sockettest.NewServer(t, hub)
//		alice, bob := srv.Dial(t, "/", nil), srv.Socket(t, "/", nil)
//		bobEvents := sockettest.Record(bob)
//		srv.Connect(t, bob)
//		alice.Emit("chat", "hi")
//		var text string
//		bobEvents.Expect(t, "chat", &text)
//	}
package sockettest

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
)

// Timeout bounds every wait of this package.
var Timeout = 5 * time.Second

// Server is a Hub served on a local httptest.Server.
type Server struct {
	*httptest.Server
	Hub *rally.Hub
}

// NewServer serves hub on a new httptest.Server. Both are closed when the
// test ends.
func NewServer(t testing.TB, hub *rally.Hub) *Server {
	t.Helper()
	ts := httptest.NewServer(hub)
	t.Cleanup(func() {
		hub.Close()
		ts.Close()
	})
	return &Server{Server: ts, Hub: hub}
}

// Socket returns a client socket for namespace nsp, not yet connected, so
// that handlers can be registered first. It is closed when the test ends.
func (s *Server) Socket(t testing.TB, nsp string, opts *client.Options) *client.Socket {
	t.Helper()
	c := client.New(s.URL+nsp, opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// Connect connects c, failing the test if it cannot.
func (s *Server) Connect(t testing.TB, c *client.Socket) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("sockettest: connecting to %s: %v", c.Namespace(), err)
	}
}

// Dial returns a connected client socket for namespace nsp.
func (s *Server) Dial(t testing.TB, nsp string, opts *client.Options) *client.Socket {
	t.Helper()
	c := s.Socket(t, nsp, opts)
	s.Connect(t, c)
	return c
}

// Event is an event a client received.
type Event struct {
	Name string
	Args rally.Reply
}

// Recorder records the events a client socket receives.
type Recorder struct {
	mu     sync.Mutex
	events []Event
	next   map[string]int // index of the next unconsumed event per name
	signal chan struct{}
}

// Record starts recording the events of c. Call it before c connects to
// see the events sent on connection.
func Record(c *client.Socket) *Recorder {
	r := &Recorder{next: make(map[string]int), signal: make(chan struct{})}
	c.OnAny(func(event string, args rally.Reply) {
		r.mu.Lock()
		r.events = append(r.events, Event{Name: event, Args: args})
		close(r.signal)
		r.signal = make(chan struct{})
		r.mu.Unlock()
	})
	return r
}

// Events returns the events recorded so far, in order.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// Count returns how many times event was received.
func (r *Recorder) Count(event string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Name == event {
			n++
		}
	}
	return n
}

// Pending returns how many occurrences of event have been received and not
// yet returned by Wait or Expect.
func (r *Recorder) Pending(event string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for i := r.next[event]; i < len(r.events); i++ {
		if r.events[i].Name == event {
			n++
		}
	}
	return n
}

// Wait returns the arguments of the next occurrence of event not returned
// before, waiting up to Timeout for it.
func (r *Recorder) Wait(t testing.TB, event string) rally.Reply {
	t.Helper()
	deadline := time.NewTimer(Timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		for i := r.next[event]; i < len(r.events); i++ {
			if e := r.events[i]; e.Name == event {
				r.next[event] = i + 1
				r.mu.Unlock()
				return e.Args
			}
		}
		r.next[event] = len(r.events)
		signal := r.signal
		r.mu.Unlock()
		select {
		case <-signal:
		case <-deadline.C:
			t.Fatalf("sockettest: no %q event within %v (received: %s)", event, Timeout, r.summary())
			return rally.Reply{}
		}
	}
}

// Expect waits for the next occurrence of event like Wait and decodes its
// arguments into dst.
func (r *Recorder) Expect(t testing.TB, event string, dst ...any) {
	t.Helper()
	if err := r.Wait(t, event).Decode(dst...); err != nil {
		t.Fatalf("sockettest: decoding %q: %v", event, err)
	}
}

// summary counts the events received by name, for failure messages.
func (r *Recorder) summary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	counts := make(map[string]int)
	var order []string
	for _, e := range r.events {
		if counts[e.Name] == 0 {
			order = append(order, e.Name)
		}
		counts[e.Name]++
	}
	parts := make([]string, len(order))
	for i, name := range order {
		parts[i] = fmt.Sprintf("%q×%d", name, counts[name])
	}
	return strings.Join(parts, ", ")
}
