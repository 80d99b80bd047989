package rally_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/sockettest"
)

// tally counts what an Observer is told.
type tally struct {
	mu     sync.Mutex
	counts map[string]int
	sizes  map[string]int
}

func (t *tally) add(key string, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts[key]++
	t.sizes[key] += n
}

func (t *tally) get(key string) (count, size int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts[key], t.sizes[key]
}

func (t *tally) observer() *rally.Observer {
	return &rally.Observer{
		ConnectionOpened:   func(tr string) { t.add("opened "+tr, 0) },
		ConnectionRefused:  func(code int, msg string) { t.add("refused "+msg, 0) },
		ConnectionUpgraded: func() { t.add("upgraded", 0) },
		ConnectionClosed:   func(tr, reason string) { t.add("closed "+tr+" "+reason, 0) },
		PacketIn:           func(n int) { t.add("in", n) },
		PacketOut:          func(n int) { t.add("out", n) },
		SocketConnected:    func(s *rally.Socket) { t.add("connected "+s.Namespace().Name(), 0) },
		SocketDisconnected: func(s *rally.Socket, reason string) { t.add("disconnected "+reason, 0) },
		RoomJoined:         func(s *rally.Socket, room string) { t.add("joined "+roomKind(s, room), 0) },
		RoomLeft:           func(s *rally.Socket, room string) { t.add("left "+roomKind(s, room), 0) },
		Broadcast:          func(n *rally.Namespace, recipients int) { t.add("broadcast", recipients) },
		VolatileDropped:    func(n *rally.Namespace) { t.add("volatile dropped", 0) },
		AckRoundTrip: func(n *rally.Namespace, d time.Duration, err error) {
			if err == nil && d > 0 {
				t.add("ack ok", 0)
			} else {
				t.add("ack failed", 0)
			}
		},
		NamespaceCreated: func(n *rally.Namespace) { t.add("namespace "+n.Name(), 0) },
	}
}

func roomKind(s *rally.Socket, room string) string {
	if room == s.ID() {
		return "own"
	}
	return room
}

// TestObserver drives a hub with real clients and checks what an
// observer was told against what was done.
func TestObserver(t *testing.T) {
	hub := rally.NewHub(nil)
	hub.Of("/admin")
	tl := &tally{counts: map[string]int{}, sizes: map[string]int{}}
	hub.Observe(tl.observer())
	hub.Of("/late")
	hub.On("join", func(s *rally.Socket, room string) { s.Join(room, room) })
	hub.On("leave", func(s *rally.Socket, room string) { s.Leave(room, "never joined") })
	srv := sockettest.NewServer(t, hub)

	ws := srv.Dial(t, "/", &client.Options{Transports: []string{client.TransportWebSocket}, DisableReconnection: true})
	poll := srv.Dial(t, "/", &client.Options{Transports: []string{client.TransportPolling}, DisableReconnection: true})
	up := srv.Dial(t, "/", &client.Options{DisableReconnection: true})
	for _, c := range []*client.Socket{ws, poll, up} {
		c.On("ping me", func() string { return "pong" })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range []*client.Socket{ws, poll} {
		if _, err := c.EmitWithAck(ctx, "join", "r"); err != nil {
			t.Fatal(err)
		}
	}
	if err := hub.To("r").Emit("news", "twelve bytes"); err != nil {
		t.Fatal(err)
	}
	if _, err := hub.EmitWithAck(ctx, "ping me"); err != nil {
		t.Fatal(err)
	}
	if _, err := ws.EmitWithAck(ctx, "leave", "r"); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get(srv.URL + "/socket.io/?EIO=4&transport=pigeon"); err == nil {
		resp.Body.Close()
	}
	ws.Close()
	poll.Close()
	waitFor(t, "both clients' disconnects", func() bool { n, _ := tl.get("disconnected client namespace disconnect"); return n == 2 })
	waitFor(t, "the third client's upgrade", func() bool { n, _ := tl.get("upgraded"); return n == 1 })

	for key, want := range map[string]int{
		"namespace /":               1,
		"namespace /admin":          1,
		"namespace /late":           1,
		"opened websocket":          1,
		"opened polling":            2,
		"upgraded":                  1,
		"connected /":               3,
		"joined own":                3,
		"joined r":                  2,
		"left r":                    2, // ws left, then poll at its disconnect
		"left own":                  2,
		"broadcast":                 2, // To("r") and EmitWithAck(all)
		"ack ok":                    1,
		"refused Transport unknown": 1,
		"disconnected client namespace disconnect": 2,
	} {
		if got, _ := tl.get(key); got != want {
			t.Errorf("%q: told %d times, want %d", key, got, want)
		}
	}
	if _, recipients := tl.get("broadcast"); recipients != 2+3 {
		t.Errorf("broadcasts reached %d sockets, want 5", recipients)
	}
	if in, _ := tl.get("in"); in < 3+3+2 { // 3 CONNECT, 3 ack replies, 2 join... at least
		t.Errorf("%d packets in", in)
	}
	if out, bytes := tl.get("out"); out < 3+5 || bytes == 0 {
		t.Errorf("%d packets out, %d bytes", out, bytes)
	}
	st := hub.Stats()
	if st.Connections < 1 || len(st.Namespaces) != 3 || st.Namespaces[0].Name != "/" {
		t.Errorf("stats %+v", st)
	}
	waitFor(t, "the websocket's close", func() bool { n, _ := tl.get("closed websocket transport close"); return n >= 1 })
}

// waitFor polls cond until it holds, or fails the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestObserverStop checks that a removed observer is told nothing more,
// while the others still are, and that SetData is reported.
func TestObserverStop(t *testing.T) {
	hub := rally.NewHub(nil)
	kept, removed := &tally{counts: map[string]int{}, sizes: map[string]int{}}, &tally{counts: map[string]int{}, sizes: map[string]int{}}
	hub.Observe(kept.observer())
	stop := hub.Observe(removed.observer())
	var data atomic.Int64
	hub.Observe(&rally.Observer{SocketDataSet: func(s *rally.Socket) { data.Add(1) }})
	hub.OnConnect(func(s *rally.Socket) { s.SetData("x") })
	srv := sockettest.NewServer(t, hub)
	srv.Dial(t, "/", &client.Options{DisableReconnection: true})
	hub.Emit("one")
	stop()
	hub.Emit("two")
	if n, _ := kept.get("broadcast"); n != 2 {
		t.Errorf("the kept observer saw %d broadcasts, want 2", n)
	}
	if n, _ := removed.get("broadcast"); n != 1 {
		t.Errorf("the removed observer saw %d broadcasts, want 1", n)
	}
	waitFor(t, "SetData to be reported", func() bool { return data.Load() == 1 })
}
