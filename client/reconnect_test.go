package client_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
)

var reconnectModes = []struct {
	name       string
	transports []string
	final      string
}{
	{"websocket", []string{client.TransportWebSocket}, client.TransportWebSocket},
	{"polling", []string{client.TransportPolling}, client.TransportPolling},
	{"upgrade", nil, client.TransportWebSocket},
}

var cuts = []struct {
	name string
	cut  func(cs *cutServer, c *client.Socket) error
}{
	// The server closes the connection (Node's socket.conn.close()).
	{"CloseConnection", func(cs *cutServer, c *client.Socket) error { return c.Emit("cut") }},
	// The network fails: every TCP connection is closed under both ends.
	{"tcp", func(cs *cutServer, c *client.Socket) error { cs.ln.cut(); return nil }},
}

// A lost connection is reopened by itself; every namespace of the manager
// is joined again (with a new id: rally has no recovery here), and the
// emits made meanwhile, an EmitWithAck among them, reach the server once
// each, in order, after the reconnection.
func TestReconnect(t *testing.T) {
	for _, mode := range reconnectModes {
		for _, cut := range cuts {
			t.Run(mode.name+"/"+cut.name, func(t *testing.T) {
				var got arrivals
				cs := newCutServer(t, testHub(&got, "/", "/chat"))
				m := cs.manager(t, cs.opts(mode.transports))
				ml := watchManager(m)
				main, chat := m.Socket("/"), m.Socket("/chat")
				lives := []*life{watch(main), watch(chat)}
				socks := []*client.Socket{main, chat}
				for _, c := range socks {
					if err := c.Connect(ctxWait(t)); err != nil {
						t.Fatal(err)
					}
				}
				old := []string{recv(t, lives[0].connects, "connect"), recv(t, lives[1].connects, "connect")}
				if mode.final == client.TransportWebSocket {
					waitUntil(t, "upgraded", func() bool { return m.Transport() == client.TransportWebSocket })
				}

				cs.down()
				if err := cut.cut(cs, main); err != nil {
					t.Fatal(err)
				}
				for i, l := range lives {
					reason := recv(t, l.disconnects, "disconnect")
					if reason != client.ReasonTransportClose && reason != client.ReasonTransportError {
						t.Fatalf("%s: disconnect reason %q", socks[i].Namespace(), reason)
					}
				}
				for _, c := range socks {
					if c.Connected() || !c.Active() {
						t.Fatalf("%s after the cut: connected %v, active %v", c.Namespace(), c.Connected(), c.Active())
					}
					for i := range 20 {
						if err := c.Emit("n", i); err != nil {
							t.Fatalf("%s: Emit while disconnected: %v", c.Namespace(), err)
						}
					}
				}
				acked := make(chan error, 1)
				go func() {
					r, err := main.EmitWithAck(ctxWait(t), "n?", 20)
					var n int
					if err == nil && (r.Decode(&n) != nil || n != 20) {
						err = fmt.Errorf("ack %v", r.Values())
					}
					acked <- err
				}()
				waitUntil(t, "the EmitWithAck buffered", func() bool { return main.Buffered() == 21 })
				recv(t, ml.errors, "reconnect_error") // the server is down
				cs.up()

				if n := recv(t, ml.reconnects, "reconnect"); n < 2 {
					t.Fatalf("reconnected at attempt %d, after a refused one", n)
				}
				for i, l := range lives {
					id := recv(t, l.connects, "reconnect of "+socks[i].Namespace())
					if id == old[i] || id == "" {
						t.Fatalf("%s: id %q after reconnecting, was %q", socks[i].Namespace(), id, old[i])
					}
				}
				if err := recv(t, acked, "ack"); err != nil {
					t.Fatal(err)
				}
				for i, c := range socks {
					id := syncID(t, c)
					if id != c.ID() {
						t.Fatalf("%s: server id %q, client %q", c.Namespace(), id, c.ID())
					}
					want := 20
					if i == 0 {
						want = 21
					}
					arrived := got.of(c.Namespace())
					if len(arrived) != want {
						t.Fatalf("%s: %d emits arrived, want %d: %v", c.Namespace(), len(arrived), want, arrived)
					}
					for n, a := range arrived {
						if a.n != n || a.id != id {
							t.Fatalf("%s: arrival %d is %v, want %d from %s", c.Namespace(), n, a, n, id)
						}
					}
					if c.Buffered() != 0 {
						t.Fatalf("%s: %d still buffered", c.Namespace(), c.Buffered())
					}
				}
				if mode.final == client.TransportWebSocket {
					waitUntil(t, "upgraded again", func() bool { return m.Transport() == client.TransportWebSocket })
				} else if tr := m.Transport(); tr != mode.final {
					t.Fatalf("transport %q after reconnecting", tr)
				}
				select {
				case <-main.Done():
					t.Fatal("Done closed by a reconnected blip")
				default:
				}
				if main.Reason() != "" {
					t.Fatalf("Reason %q after a blip", main.Reason())
				}
			})
		}
	}
}

// Once ReconnectionAttempts attempts in a row have failed, the manager
// gives up: reconnect_failed, and every waiting socket ends, with the
// reason of the loss; its kept emits fail or are dropped.
func TestReconnectFailed(t *testing.T) {
	var got arrivals
	cs := newCutServer(t, testHub(&got, "/"))
	opts := cs.opts([]string{client.TransportWebSocket})
	opts.ReconnectionAttempts = 3
	m := cs.manager(t, opts)
	ml := watchManager(m)
	c := m.Socket("/")
	l := watch(c)
	if err := c.Connect(ctxWait(t)); err != nil {
		t.Fatal(err)
	}
	cs.down()
	c.Emit("cut")
	reason := recv(t, l.disconnects, "disconnect")
	acked := make(chan error, 1)
	go func() {
		_, err := c.EmitWithAck(context.Background(), "n?", 1)
		acked <- err
	}()
	for want := 1; want <= 3; want++ {
		if n := recv(t, ml.attempts, "reconnect_attempt"); n != want {
			t.Fatalf("attempt %d, want %d", n, want)
		}
		recv(t, ml.errors, "reconnect_error")
	}
	recv(t, ml.failed, "reconnect_failed")
	<-c.Done()
	if c.Reason() != reason || c.Active() || c.Connected() {
		t.Fatalf("after giving up: reason %q (lost for %q), active %v, connected %v", c.Reason(), reason, c.Active(), c.Connected())
	}
	if err := recv(t, acked, "failed ack"); !errors.Is(err, rally.ErrDisconnected) {
		t.Fatalf("kept EmitWithAck: %v", err)
	}
	if err := c.Emit("n", 2); !errors.Is(err, client.ErrNotConnected) {
		t.Fatalf("Emit after the end: %v", err)
	}
	if n := len(cs.handshakeTimes()); n != 4 {
		t.Fatalf("%d handshakes, want the first and 3 attempts", n)
	}

	// The socket can start again.
	cs.up()
	if err := c.Connect(ctxWait(t)); err != nil {
		t.Fatal(err)
	}
	recv(t, l.connects, "connect")
	if n := len(got.of("/")); n != 0 {
		t.Fatalf("%d dropped emits arrived", n)
	}
}

// The delays between attempts follow the backoff: exact without
// randomization, within the official formula's bounds with it, capped at
// ReconnectionDelayMax. The handshakes' arrivals on the server time them:
// an attempt starts at least its delay after the previous one failed.
func TestReconnectBackoffTiming(t *testing.T) {
	const base, cap = 100 * time.Millisecond, 400 * time.Millisecond
	for _, factor := range []float64{client.NoRandomization, 0.5} {
		t.Run(fmt.Sprint(factor), func(t *testing.T) {
			cs := newCutServer(t, testHub(nil, "/"))
			opts := cs.opts([]string{client.TransportWebSocket})
			opts.ReconnectionDelay, opts.ReconnectionDelayMax, opts.RandomizationFactor = base, cap, factor
			opts.ReconnectionAttempts = 5
			m := cs.manager(t, opts)
			ml := watchManager(m)
			c := m.Socket("/")
			if err := c.Connect(ctxWait(t)); err != nil {
				t.Fatal(err)
			}
			cs.down()
			cut := time.Now()
			c.Emit("cut")
			recv(t, ml.failed, "reconnect_failed")
			times := cs.handshakeTimes()[1:] // the attempts
			if len(times) != 5 {
				t.Fatalf("%d attempts", len(times))
			}
			prev := cut
			for i, at := range times {
				exact := min(base<<i, cap)
				low, high := exact, exact
				if factor > 0 {
					low = min(time.Duration(float64(base<<i)*(1-factor)), cap)
					high = min(time.Duration(float64(base<<i)*(1+factor)), cap)
				}
				gap := at.Sub(prev)
				t.Logf("attempt %d: %v after the previous one (delay in [%v, %v])", i+1, gap.Round(time.Millisecond), low, high)
				// Slack above: the attempt's own handshake, on a loaded machine.
				if gap < low || gap > high+2*time.Second {
					t.Errorf("attempt %d came %v after the previous, want a delay in [%v, %v]", i+1, gap, low, high)
				}
				prev = at
			}
		})
	}
}

// The application's Disconnect does not reconnect, nor does a namespace
// the server disconnected, while the other namespaces of the connection
// still do.
func TestNoReconnectAfterDisconnect(t *testing.T) {
	t.Run("client", func(t *testing.T) {
		cs := newCutServer(t, testHub(nil, "/"))
		opts := cs.opts(nil)
		opts.ReconnectionDelay, opts.RandomizationFactor = time.Millisecond, client.NoRandomization
		m := cs.manager(t, opts)
		ml := watchManager(m)
		c := m.Socket("/")
		l := watch(c)
		serverReasons := make(chan string, 16)
		cs.hub.OnDisconnect(func(s *rally.Socket, reason string) { serverReasons <- reason })
		if err := c.Connect(ctxWait(t)); err != nil {
			t.Fatal(err)
		}
		c.Disconnect()
		if r := recv(t, l.disconnects, "disconnect"); r != client.ReasonClientDisconnect {
			t.Fatalf("client reason %q", r)
		}
		<-c.Done()
		if r := recv(t, serverReasons, "server disconnect"); r != "client namespace disconnect" {
			t.Fatalf("server reason %q", r)
		}
		if c.Active() || m.Transport() != "" || c.Reason() != client.ReasonClientDisconnect {
			t.Fatalf("after Disconnect: active %v, transport %q, reason %q", c.Active(), m.Transport(), c.Reason())
		}
		assertQuiet(t, cs, ml, 1)
	})
	t.Run("server", func(t *testing.T) {
		cs := newCutServer(t, testHub(nil, "/", "/chat"))
		opts := cs.opts(nil)
		opts.ReconnectionDelay, opts.RandomizationFactor = time.Millisecond, client.NoRandomization
		cs.hub.Of("/chat").On("leave", func(s *rally.Socket) { s.Disconnect(false) })
		var chatJoins atomic.Int32
		cs.hub.Of("/chat").OnConnect(func(s *rally.Socket) { chatJoins.Add(1) })
		m := cs.manager(t, opts)
		ml := watchManager(m)
		main, chat := m.Socket("/"), m.Socket("/chat")
		lm, lc := watch(main), watch(chat)
		for _, c := range []*client.Socket{main, chat} {
			if err := c.Connect(ctxWait(t)); err != nil {
				t.Fatal(err)
			}
		}
		recv(t, lm.connects, "connect")
		recv(t, lc.connects, "connect")
		chat.Emit("leave")
		if r := recv(t, lc.disconnects, "disconnect"); r != client.ReasonServerDisconnect {
			t.Fatalf("reason %q", r)
		}
		<-chat.Done()
		if chat.Active() || chat.Reason() != client.ReasonServerDisconnect {
			t.Fatalf("chat: active %v, reason %q", chat.Active(), chat.Reason())
		}
		// The connection is lost: "/" comes back, "/chat" does not.
		main.Emit("cut")
		recv(t, lm.disconnects, "disconnect")
		recv(t, lm.connects, "reconnect")
		recv(t, ml.reconnects, "reconnect")
		for len(ml.attempts) > 0 {
			<-ml.attempts
		}
		syncID(t, main)
		if n := chatJoins.Load(); n != 1 {
			t.Fatalf("/chat joined %d times", n)
		}
		if err := chat.Emit("n", 1); !errors.Is(err, client.ErrNotConnected) {
			t.Fatalf("Emit on the disconnected namespace: %v", err)
		}
		before := len(cs.handshakeTimes())
		main.Disconnect()
		assertQuiet(t, cs, ml, before)
	})
}

// assertQuiet checks that no reconnection happens: with attempts 1 ms
// apart, any would show in the time the server takes to answer a few
// handshakes of a client of its own.
func assertQuiet(t *testing.T, cs *cutServer, ml *managerLog, handshakes int) {
	t.Helper()
	for range 5 {
		c := client.New(cs.URL, &client.Options{HTTPClient: cs.client, DisableReconnection: true})
		if err := c.Connect(ctxWait(t)); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	select {
	case n := <-ml.attempts:
		t.Fatalf("reconnection attempt %d", n)
	default:
	}
	if n := len(cs.handshakeTimes()); n != handshakes+5 {
		t.Fatalf("%d handshakes, want %d", n, handshakes+5)
	}
}

// With DisableReconnection, a lost connection ends the sockets.
func TestDisableReconnection(t *testing.T) {
	cs := newCutServer(t, testHub(nil, "/"))
	opts := cs.opts(nil)
	opts.DisableReconnection = true
	m := cs.manager(t, opts)
	ml := watchManager(m)
	c := m.Socket("/")
	l := watch(c)
	if err := c.Connect(ctxWait(t)); err != nil {
		t.Fatal(err)
	}
	c.Emit("cut")
	reason := recv(t, l.disconnects, "disconnect")
	<-c.Done()
	if c.Reason() != reason || reason != client.ReasonTransportClose {
		t.Fatalf("reason %q, disconnect %q", c.Reason(), reason)
	}
	if err := c.Emit("n", 1); !errors.Is(err, client.ErrNotConnected) {
		t.Fatalf("Emit: %v", err)
	}
	assertQuiet(t, cs, ml, 1)
}

// Emits kept while disconnected are bounded: past MaxBufferedEmits they
// fail with ErrBufferFull; a negative bound keeps none. An EmitWithAck
// whose ctx ends while it is kept is dropped, not sent later.
func TestBufferedEmitsBound(t *testing.T) {
	for _, limit := range []int{3, -1} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			var got arrivals
			cs := newCutServer(t, testHub(&got, "/"))
			opts := cs.opts([]string{client.TransportPolling})
			opts.MaxBufferedEmits = limit
			m := cs.manager(t, opts)
			ml := watchManager(m)
			c := m.Socket("/")
			l := watch(c)
			if err := c.Connect(ctxWait(t)); err != nil {
				t.Fatal(err)
			}
			recv(t, l.connects, "connect")
			cs.down()
			c.Emit("cut")
			recv(t, l.disconnects, "disconnect")
			var want []int
			if limit > 0 {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				if _, err := c.EmitWithAck(ctx, "n?", 100); !errors.Is(err, context.Canceled) {
					t.Fatalf("EmitWithAck with an ended ctx: %v", err)
				}
				for i := range limit {
					if err := c.Emit("n", i); err != nil {
						t.Fatal(err)
					}
					want = append(want, i)
				}
				if err := c.Emit("n", limit); !errors.Is(err, client.ErrBufferFull) {
					t.Fatalf("Emit past the bound: %v", err)
				}
				if _, err := c.EmitWithAck(ctxWait(t), "n?", limit); !errors.Is(err, client.ErrBufferFull) {
					t.Fatalf("EmitWithAck past the bound: %v", err)
				}
			} else if err := c.Emit("n", 0); !errors.Is(err, client.ErrNotConnected) {
				t.Fatalf("Emit without a buffer: %v", err)
			}
			recv(t, ml.errors, "reconnect_error")
			cs.up()
			recv(t, l.connects, "reconnect")
			syncID(t, c)
			var arrived []int
			for _, a := range got.of("/") {
				arrived = append(arrived, a.n)
			}
			if !slices.Equal(arrived, want) {
				t.Fatalf("arrived %v, want %v", arrived, want)
			}
		})
	}
}

// The first Connect reports its failure and does not retry; the socket
// can Connect again.
func TestFirstConnectFails(t *testing.T) {
	cs := newCutServer(t, testHub(nil, "/"))
	m := cs.manager(t, cs.opts(nil))
	ml := watchManager(m)
	c := m.Socket("/")
	cs.down()
	if err := c.Connect(ctxWait(t)); err == nil {
		t.Fatal("connected to a server that is down")
	}
	if c.Active() {
		t.Fatal("active after a failed Connect")
	}
	cs.up()
	if err := c.Connect(ctxWait(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-ml.attempts:
		t.Fatalf("reconnection attempt %d for a first Connect", n)
	default:
	}
	if n := len(cs.handshakeTimes()); n != 2 {
		t.Fatalf("%d handshakes, want 2", n)
	}
}

// A namespace the server refuses on reconnection ends with a
// *rally.ConnectError; the others of the connection carry on.
func TestReconnectRefused(t *testing.T) {
	cs := newCutServer(t, testHub(nil, "/", "/chat"))
	var refuse atomic.Bool
	cs.hub.Of("/chat").Use(func(s *rally.Socket) error {
		if refuse.Load() {
			return &rally.ConnectError{Message: "not any more"}
		}
		return nil
	})
	m := cs.manager(t, cs.opts(nil))
	main, chat := m.Socket("/"), m.Socket("/chat")
	lm, lc := watch(main), watch(chat)
	for _, c := range []*client.Socket{main, chat} {
		if err := c.Connect(ctxWait(t)); err != nil {
			t.Fatal(err)
		}
	}
	refuse.Store(true)
	main.Emit("cut")
	err := recv(t, lc.refusals, "connect_error")
	var ce *rally.ConnectError
	if !errors.As(err, &ce) || ce.Message != "not any more" {
		t.Fatalf("refusal %v", err)
	}
	<-chat.Done()
	if chat.Active() || chat.Reason() == "" {
		t.Fatalf("refused socket: active %v, reason %q", chat.Active(), chat.Reason())
	}
	recv(t, lm.connects, "connect")
	recv(t, lm.connects, "reconnect")
	syncID(t, main)
}
