package rally_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/sockettest"
)

// Outgoing listeners of the namespace see what every socket is sent,
// before the socket's own.
func TestNamespaceOutgoingListeners(t *testing.T) {
	hub := rally.NewHub(nil)
	var mu sync.Mutex
	var seen []string
	note := func(who string) func(*rally.Socket, *rally.Event) {
		return func(s *rally.Socket, e *rally.Event) {
			mu.Lock()
			seen = append(seen, who+":"+e.Name)
			mu.Unlock()
		}
	}
	hub.OnAnyOutgoing(note("hub"))
	hub.OnConnect(func(s *rally.Socket) { s.OnAnyOutgoing(note("socket")) })
	srv := sockettest.NewServer(t, hub)
	c := srv.Socket(t, "/", nil)
	got := sockettest.Record(c)
	srv.Connect(t, c)
	s := hub.Of("/").Socket(c.ID())
	s.Emit("one")
	hub.Emit("two")
	got.Expect(t, "one")
	got.Expect(t, "two")
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"hub:one", "socket:one", "hub:two", "socket:two"}; !slices.Equal(seen, want) {
		t.Fatalf("listeners saw %q, want %q", seen, want)
	}
}

// Socket.Volatile drops an event for a socket whose connection cannot take
// it at once, instead of queueing it, and delivers it otherwise.
func TestSocketVolatile(t *testing.T) {
	hub := rally.NewHub(&rally.Options{MaxQueuedBytes: 64 << 10})
	disconnected := make(chan string, 2)
	hub.OnDisconnect(func(s *rally.Socket, reason string) { disconnected <- reason })
	connected := make(chan *rally.Socket, 2)
	hub.OnConnect(func(s *rally.Socket) { connected <- s })
	srv := sockettest.NewServer(t, hub)
	reader := srv.Socket(t, "/", &client.Options{Transports: []string{client.TransportWebSocket}})
	got := sockettest.Record(reader)
	srv.Connect(t, reader)
	(<-connected).Volatile().Emit("tick", 0)
	got.Expect(t, "tick")
	dialStalled(t, srv)
	stalled := <-connected
	payload := strings.Repeat("x", 8<<10)
	for i := range 2000 { // 16 MB, far past the stalled socket's queue
		stalled.Volatile().Emit("tick", i, payload)
	}
	select {
	case r := <-disconnected:
		t.Fatalf("a socket was disconnected by volatile emits: %s", r)
	case <-time.After(100 * time.Millisecond):
	}
}
