package rally_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/sockettest"
)

// Requests whose request line and headers pass MaxHeaderBytes are answered
// 431, as the official server's HTTP parser answers them, whatever the
// request; smaller ones are served.
func TestMaxHeaderBytes(t *testing.T) {
	cases := []struct {
		name   string
		limit  int
		header int // bytes of one extra header's value
		query  int // bytes of one extra query parameter
		want   int
	}{
		{"small", 0, 1 << 10, 0, http.StatusOK},
		{"header under 16 KiB", 0, 14 << 10, 0, http.StatusOK},
		{"header over 16 KiB", 0, 17 << 10, 0, http.StatusRequestHeaderFieldsTooLarge},
		{"query over 16 KiB", 0, 0, 17 << 10, http.StatusRequestHeaderFieldsTooLarge},
		{"900 KB header", 0, 900_000, 0, http.StatusRequestHeaderFieldsTooLarge},
		{"lower limit", 4 << 10, 5 << 10, 0, http.StatusRequestHeaderFieldsTooLarge},
		{"no limit", -1, 64 << 10, 0, http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := sockettest.NewServer(t, rally.NewHub(&rally.Options{MaxHeaderBytes: tc.limit}))
			url := srv.URL + "/socket.io/?EIO=4&transport=polling"
			if tc.query > 0 {
				url += "&pad=" + strings.Repeat("q", tc.query)
			}
			req, _ := http.NewRequest("GET", url, nil)
			if tc.header > 0 {
				req.Header.Set("X-Pad", strings.Repeat("h", tc.header))
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.want)
			}
		})
	}
}

// A request of a session from an origin the hub does not allow is refused,
// and the session goes on undisturbed for its client.
func TestOriginCheckedOnEveryRequest(t *testing.T) {
	hub := rally.NewHub(&rally.Options{AllowedOrigins: []string{"https://good.example"}})
	hub.On("echo", func(s *rally.Socket, v string) string { return v })
	srv := sockettest.NewServer(t, hub)
	p := openPoll(t, srv) // no Origin: a Node client, say
	p.do("POST", p.q(), "40")
	if _, body := p.do("GET", p.q(), ""); !strings.HasPrefix(body, "40{") {
		t.Fatalf("CONNECT reply %q", body)
	}

	forged := func(method, body string) int {
		req, _ := http.NewRequest(method, p.url+"?"+p.q(), strings.NewReader(body))
		req.Header.Set("Origin", "https://evil.example")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if status := forged("GET", ""); status != http.StatusForbidden {
		t.Fatalf("GET of a session from another origin: %d, want 403", status)
	}
	if status := forged("POST", `421["echo","stolen"]`); status != http.StatusForbidden {
		t.Fatalf("POST to a session from another origin: %d, want 403", status)
	}
	if status, body := p.do("POST", p.q(), `422["echo","mine"]`); status != http.StatusOK || body != "ok" {
		t.Fatalf("the session's own POST: %d %q", status, body)
	}
	if _, body := p.do("GET", p.q(), ""); body != `432["mine"]` {
		t.Fatalf("the session's own poll: %q, want only the ack of its own event", body)
	}
}

// pendingHub returns a hub allowing few waiting events, whose "work"
// handler waits until release is closed, counting calls.
func pendingHub(newHub func(*rally.Options) *rally.Hub, limit int) (hub *rally.Hub, started *atomic.Int32, release chan struct{}, order *[]int, mu *sync.Mutex) {
	hub = newHub(&rally.Options{MaxPendingEvents: limit})
	started, release = new(atomic.Int32), make(chan struct{})
	order, mu = new([]int), new(sync.Mutex)
	hub.On("work", func(s *rally.Socket, n int) int {
		started.Add(1)
		<-release
		mu.Lock()
		*order = append(*order, n)
		mu.Unlock()
		return n
	})
	return hub, started, release, order, mu
}

// A polling client whose events wait to be handled gets the answer to its
// POST once they may: the POST is held, and nothing is lost or reordered.
func TestPendingEventsHoldPollingPOST(t *testing.T) {
	hub, started, release, order, mu := pendingHub(rally.NewHub, 4)
	srv := sockettest.NewServer(t, hub)
	p := openPoll(t, srv)
	p.do("POST", p.q(), "40")
	p.do("GET", p.q(), "")

	const n = 20
	var body []string
	for i := range n {
		body = append(body, fmt.Sprintf(`42["work",%d]`, i))
	}
	answered := make(chan string, 1)
	go func() {
		_, b := p.do("POST", p.q(), strings.Join(body, "\x1e"))
		answered <- b
	}()
	select {
	case b := <-answered:
		t.Fatalf("the POST was answered %q while its events could not be taken", b)
	case <-time.After(300 * time.Millisecond):
	}
	if s := started.Load(); s != 1 {
		t.Fatalf("%d handlers started, want 1 (they run in order)", s)
	}
	close(release)
	select {
	case b := <-answered:
		if b != "ok" {
			t.Fatalf("POST answered %q", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the POST was not answered once the events were handled")
	}
	waitUntil(t, "every event handled", func() bool { mu.Lock(); defer mu.Unlock(); return len(*order) == n })
	mu.Lock()
	defer mu.Unlock()
	for i, v := range *order {
		if v != i {
			t.Fatalf("events handled in the order %v", *order)
		}
	}
}

// A websocket client that sends far more events than may wait is read in
// step with its handlers, and loses none: every event is handled once and
// acked.
func TestPendingEventsOverWebSocketLoseNothing(t *testing.T) {
	for _, mode := range []struct {
		name   string
		newHub func(*rally.Options) *rally.Hub
	}{{"epoll", rally.NewHub}, {"goroutine", rally.NewHubNoPoller}} {
		t.Run(mode.name, func(t *testing.T) {
			hub, started, release, order, mu := pendingHub(mode.newHub, 4)
			srv := sockettest.NewServer(t, hub)
			c := srv.Dial(t, "/", &client.Options{Transports: []string{client.TransportWebSocket}})
			const n = 200
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			acks := make(chan int, n)
			for i := range n {
				go func() {
					r, err := c.EmitWithAck(ctx, "work", i)
					var v int
					if err == nil {
						err = r.Decode(&v)
					}
					if err != nil {
						v = -1
					}
					acks <- v
				}()
			}
			time.Sleep(300 * time.Millisecond)
			if s := started.Load(); s != 1 {
				t.Fatalf("%d handlers started, want 1", s)
			}
			close(release)
			seen := make(map[int]bool)
			for range n {
				select {
				case v := <-acks:
					if v < 0 || seen[v] {
						t.Fatalf("ack %d (missing or repeated)", v)
					}
					seen[v] = true
				case <-ctx.Done():
					t.Fatalf("%d of %d acks arrived", len(seen), n)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(*order) != n {
				t.Fatalf("%d of %d events handled", len(*order), n)
			}
		})
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A client whose reads are paused behind slow handlers is not taken for
// dead: its pongs wait unread with its events.
func TestPausedClientOutlivesPingTimeout(t *testing.T) {
	for _, transport := range []string{client.TransportWebSocket, client.TransportPolling} {
		t.Run(transport, func(t *testing.T) {
			hub := rally.NewHub(&rally.Options{
				MaxPendingEvents: 2,
				PingInterval:     400 * time.Millisecond,
				PingTimeout:      400 * time.Millisecond,
			})
			var handled atomic.Int32
			hub.On("slow", func(s *rally.Socket) {
				time.Sleep(100 * time.Millisecond)
				handled.Add(1)
			})
			reasons := make(chan string, 1)
			hub.OnDisconnect(func(s *rally.Socket, reason string) { reasons <- reason })
			srv := sockettest.NewServer(t, hub)
			c := srv.Dial(t, "/", &client.Options{Transports: []string{transport}})
			const n = 25 // 2.5 s of handling, three heartbeats and more
			for range n {
				c.Emit("slow")
			}
			waitUntil(t, "every event handled", func() bool { return handled.Load() == n })
			select {
			case r := <-reasons:
				t.Fatalf("disconnected while its events were handled: %s", r)
			case <-time.After(300 * time.Millisecond):
			}
		})
	}
}

// Events a client sends before its own DISCONNECT are handled, though they
// still wait when it arrives; events waiting when the connection is lost
// are not (the hostile tests count those).
func TestEventsBeforeClientDisconnectAreHandled(t *testing.T) {
	hub := rally.NewHub(nil)
	var handled atomic.Int32
	gate := make(chan struct{})
	hub.On("work", func(s *rally.Socket, n int) {
		if n == 0 {
			<-gate // the others wait behind it
		}
		handled.Add(1)
	})
	reasons := make(chan string, 1)
	hub.OnDisconnect(func(s *rally.Socket, reason string) { reasons <- reason })
	srv := sockettest.NewServer(t, hub)
	p := openPoll(t, srv)
	p.do("POST", p.q(), "40")
	p.do("GET", p.q(), "")
	if status, body := p.do("POST", p.q(), "42[\"work\",0]\x1e42[\"work\",1]\x1e42[\"work\",2]\x1e41"); status != 200 || body != "ok" {
		t.Fatalf("POST: %d %q", status, body)
	}
	close(gate)
	select {
	case r := <-reasons:
		if r != rally.ReasonClientNamespaceDisconnect {
			t.Fatalf("reason %q", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no disconnect")
	}
	if n := handled.Load(); n != 3 {
		t.Fatalf("%d of the 3 events sent before the DISCONNECT were handled when OnDisconnect ran", n)
	}
}
