package rally_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/sockettest"
)

// dialStalled connects a websocket client that joins "/" and then never
// reads again, with a small receive buffer so that the server's writes
// back up quickly.
func dialStalled(t *testing.T, srv *sockettest.Server) *websocket.Conn {
	t.Helper()
	dialer := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	httpClient := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	ctx := ctx5s(t)
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/socket.io/?EIO=4&transport=websocket&stalled=1",
		&websocket.DialOptions{HTTPClient: httpClient})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	if _, open, err := c.Read(ctx); err != nil || !strings.HasPrefix(string(open), "0{") {
		t.Fatalf("open: %q %v", open, err)
	}
	c.Write(ctx, websocket.MessageText, []byte("40"))
	if _, reply, err := c.Read(ctx); err != nil || !strings.HasPrefix(string(reply), "40{") {
		t.Fatalf("connect: %q %v", reply, err)
	}
	return c
}

// A client that stops reading is disconnected once its queue reaches the
// limit; the others get every broadcast.
func TestStalledClient(t *testing.T) {
	const limit = 256 << 10
	hub := rally.NewHub(&rally.Options{MaxQueuedBytes: limit})
	reasons := make(chan string, 1)
	hub.OnDisconnect(func(s *rally.Socket, reason string) {
		if s.Handshake().Query.Get("stalled") != "" {
			reasons <- reason
		}
	})
	srv := sockettest.NewServer(t, hub)
	var others []member
	for range 3 {
		others = append(others, join(t, srv, "/", &client.Options{Transports: []string{client.TransportWebSocket}}))
	}
	dialStalled(t, srv)

	payload := strings.Repeat("x", 8<<10)
	const messages = 2000 // 16 MB per client, far beyond what socket buffers hold
	// 64 KB, a quarter of the limit: readers keep up between batches.
	// A batch the reader has read may still count as being written
	// while the next is queued (the writer accounts for a write once
	// the system call returned, after the bytes reached the reader), so
	// two batches must fit in the limit with room to spare: with half
	// the limit, a reading client was disconnected about one run in four.
	const batch = 8
	var gone string
	for i := range messages {
		if err := hub.Emit("news", i, payload); err != nil {
			t.Fatal(err)
		}
		if i%batch == batch-1 {
			for _, m := range others {
				for j := i - batch + 1; j <= i; j++ {
					var n int
					m.events.Expect(t, "news", &n)
					if n != j {
						t.Fatalf("client %s: message %d arrived as %d", m.c.ID(), j, n)
					}
				}
			}
		}
		if gone == "" {
			select {
			case gone = <-reasons:
				t.Logf("stalled client disconnected after %d messages (%d KiB)", i+1, (i+1)*len(payload)>>10)
			default:
			}
		}
	}
	if gone == "" {
		select {
		case gone = <-reasons:
		case <-time.After(5 * time.Second):
			t.Fatal("the stalled client is still connected")
		}
	}
	if gone != rally.ReasonQueueFull {
		t.Fatalf("stalled client disconnected with %q, want %q", gone, rally.ReasonQueueFull)
	}
	for _, m := range others {
		if !m.c.Connected() {
			t.Fatalf("a reading client was disconnected: %s", m.c.Reason())
		}
	}
}

// Volatile emits to a stalled client are dropped, not queued: it stays
// connected however many are sent.
func TestStalledClientVolatile(t *testing.T) {
	hub := rally.NewHub(&rally.Options{MaxQueuedBytes: 64 << 10})
	disconnected := make(chan string, 1)
	hub.OnDisconnect(func(s *rally.Socket, reason string) { disconnected <- reason })
	srv := sockettest.NewServer(t, hub)
	dialStalled(t, srv)
	payload := strings.Repeat("x", 8<<10)
	for i := range 2000 {
		hub.All().Volatile().Emit("tick", i, payload)
	}
	select {
	case r := <-disconnected:
		t.Fatalf("disconnected by volatile emits: %s", r)
	case <-time.After(100 * time.Millisecond):
	}
	socks, _ := hub.All().FetchSockets(context.Background())
	if len(socks) != 1 {
		t.Fatalf("%d sockets connected", len(socks))
	}
}

// A polling client that stops polling is disconnected the same way.
func TestStalledPollingClient(t *testing.T) {
	hub := rally.NewHub(&rally.Options{MaxQueuedBytes: 64 << 10})
	reasons := make(chan string, 1)
	hub.OnDisconnect(func(s *rally.Socket, reason string) { reasons <- reason })
	srv := sockettest.NewServer(t, hub)
	p := openPoll(t, srv)
	p.do("POST", p.q(), "40")
	if _, body := p.do("GET", p.q(), ""); !strings.HasPrefix(body, "40{") {
		t.Fatalf("CONNECT reply %q", body)
	}
	payload := strings.Repeat("x", 8<<10)
	for i := range 20 { // 160 KiB, never polled
		if err := hub.Emit("news", i, payload); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case r := <-reasons:
		if r != rally.ReasonQueueFull {
			t.Fatalf("reason %q", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still connected")
	}
	if status, _ := p.do("GET", p.q(), ""); status != http.StatusBadRequest {
		t.Fatalf("poll after the disconnect: %d", status)
	}
}
