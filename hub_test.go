package rally_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/sockettest"
)

// modes are the three ways a client can connect.
var modes = []struct {
	name string
	opts *client.Options
}{
	{"default", nil},
	{"websocket", &client.Options{Transports: []string{client.TransportWebSocket}}},
	{"polling", &client.Options{Transports: []string{client.TransportPolling}}},
}

func ctx5s(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// member is a connected client with its recorder and server-side id.
type member struct {
	c      *client.Socket
	events *sockettest.Recorder
}

func join(t *testing.T, srv *sockettest.Server, nsp string, opts *client.Options) member {
	t.Helper()
	c := srv.Socket(t, nsp, opts)
	m := member{c: c, events: sockettest.Record(c)}
	srv.Connect(t, c)
	return m
}

// quiet asserts that m got no event named name after a marker event sent
// to everyone arrived: since a socket's packets arrive in order, an event
// sent before the marker would have arrived first.
func (m member) quiet(t *testing.T, srv *sockettest.Server, name string) {
	t.Helper()
	m.events.Wait(t, "marker")
	if n := m.events.Pending(name); n != 0 {
		t.Fatalf("%s received %d more %q events, want none", m.c.ID(), n, name)
	}
}

func TestBroadcastTargets(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			hub := rally.NewHub(nil)
			hub.On("join", func(s *rally.Socket, rooms []string) { s.Join(rooms...) })
			hub.On("to all but me", func(s *rally.Socket, v string) { s.Broadcast().Emit("news", v) })
			hub.On("to room but me", func(s *rally.Socket, room, v string) { s.To(room).Emit("news", v) })
			srv := sockettest.NewServer(t, hub)
			a := join(t, srv, "/", mode.opts)
			b := join(t, srv, "/", mode.opts)
			c := join(t, srv, "/", mode.opts)
			for _, x := range []struct {
				m     member
				rooms []string
			}{{a, []string{"red", "blue"}}, {b, []string{"red"}}, {c, []string{"green"}}} {
				if _, err := x.m.c.EmitWithAck(ctx5s(t), "join", x.rooms); err != nil {
					t.Fatal(err)
				}
			}
			marker := func() { hub.Emit("marker") }
			expect := func(m member, want string) {
				t.Helper()
				var got string
				m.events.Expect(t, "news", &got)
				if got != want {
					t.Fatalf("%s got news %q, want %q", m.c.ID(), got, want)
				}
			}

			hub.Emit("news", "all")
			for _, m := range []member{a, b, c} {
				expect(m, "all")
			}

			// A socket in two selected rooms gets the packet once.
			hub.To("red").To("blue").Emit("news", "red+blue")
			hub.In("green").Emit("news", "green")
			marker()
			expect(a, "red+blue")
			expect(b, "red+blue")
			expect(c, "green")
			for _, m := range []member{a, b, c} {
				m.quiet(t, srv, "news")
			}

			hub.Except("red").Emit("news", "not red")
			hub.To("red").Except(b.c.ID()).Emit("news", "red but b")
			marker()
			expect(c, "not red")
			expect(a, "red but b")
			b.quiet(t, srv, "news")

			a.c.Emit("to all but me", "from a")
			expect(b, "from a")
			expect(c, "from a")
			a.c.Emit("to room but me", "red", "red from a")
			expect(b, "red from a")
			marker()
			a.quiet(t, srv, "news")
			c.quiet(t, srv, "news")
		})
	}
}

func TestBroadcastIsImmutable(t *testing.T) {
	hub := rally.NewHub(nil)
	defer hub.Close()
	base := hub.To("a")
	x := base.To("b")
	y := base.Except("c")
	_ = x
	_ = y
	// Reusing base after deriving two selections must not mix them: no
	// panic and no aliasing. The observable check is in the delivery
	// tests; here the values are compared through their behaviour.
	srv := sockettest.NewServer(t, hub)
	m := join(t, srv, "/", nil)
	hub.On("noop", func(*rally.Socket) {})
	socks, err := hub.In(m.c.ID()).FetchSockets(ctx5s(t))
	if err != nil || len(socks) != 1 {
		t.Fatalf("fetch: %v %v", socks, err)
	}
	socks[0].Join("a")
	n1, _ := x.FetchSockets(ctx5s(t))
	n2, _ := y.FetchSockets(ctx5s(t))
	if len(n1) != 1 || len(n2) != 1 {
		t.Fatalf("derived selections: %d %d", len(n1), len(n2))
	}
}

func TestNamespaces(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			hub := rally.NewHub(nil)
			admin := hub.Of("admin")
			if admin.Name() != "/admin" || hub.Of("/admin") != admin {
				t.Fatal("Of does not normalize names")
			}
			hub.On("who", func(s *rally.Socket) string { return "main " + s.Namespace().Name() })
			admin.On("who", func(s *rally.Socket) string { return "admin " + s.Namespace().Name() })
			srv := sockettest.NewServer(t, hub)

			main := srv.Dial(t, "/", mode.opts)
			other := main.Manager().Socket("/admin")
			adminEvents := sockettest.Record(other)
			srv.Connect(t, other)
			t.Cleanup(func() { other.Close() })
			for _, x := range []struct {
				c    *client.Socket
				want string
			}{{main, "main /"}, {other, "admin /admin"}} {
				r, err := x.c.EmitWithAck(ctx5s(t), "who")
				var got string
				if err != nil || r.Decode(&got) != nil || got != x.want {
					t.Fatalf("who on %s: %q %v", x.c.Namespace(), got, err)
				}
			}
			admin.Emit("only admin")
			hub.Emit("marker")
			adminEvents.Wait(t, "only admin")

			bad := srv.Socket(t, "/nope", mode.opts)
			err := bad.Connect(ctx5s(t))
			var ce *rally.ConnectError
			if !errors.As(err, &ce) || ce.Message != "Invalid namespace" {
				t.Fatalf("unknown namespace: %v", err)
			}
		})
	}
}

type ctxKey struct{}

func TestMiddleware(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			hub := rally.NewHub(nil)
			hub.Use(func(s *rally.Socket) error {
				var auth struct{ Token string }
				if err := s.Handshake().DecodeAuth(&auth); err != nil || auth.Token != "secret" {
					return &rally.ConnectError{Message: "not authorized", Data: map[string]int{"code": 42}}
				}
				s.SetData(auth.Token)
				return nil
			})
			hub.Use(func(s *rally.Socket) error {
				if s.Handshake().Query.Get("room") == "" {
					return errors.New("no room")
				}
				return nil
			})
			hub.On("whoami", func(s *rally.Socket) (string, string, any) {
				user, _ := s.Context().Value(ctxKey{}).(string)
				return user, s.Handshake().Query.Get("room"), s.Data()
			})
			withUser := func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					user := r.Header.Get("X-User")
					if user == "" {
						http.Error(w, "who are you?", http.StatusUnauthorized)
						return
					}
					next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, user)))
				})
			}
			ts := httptest.NewServer(withUser(hub))
			t.Cleanup(func() { hub.Close(); ts.Close() })

			opts := func(token, room string) *client.Options {
				o := &client.Options{Auth: map[string]string{"token": token}, Header: http.Header{"X-User": {"ann"}}}
				if mode.opts != nil {
					o.Transports = mode.opts.Transports
				}
				if room != "" {
					o.Query = map[string][]string{"room": {room}}
				}
				return o
			}

			c := client.New(ts.URL, opts("wrong", "r"))
			err := c.Connect(ctx5s(t))
			var ce *rally.ConnectError
			if !errors.As(err, &ce) || ce.Message != "not authorized" || string(ce.Data.(json.RawMessage)) != `{"code":42}` {
				t.Fatalf("refusal with data: %#v", err)
			}
			c = client.New(ts.URL, opts("secret", ""))
			if err := c.Connect(ctx5s(t)); !errors.As(err, &ce) || ce.Message != "no room" || ce.Data != nil {
				t.Fatalf("refusal by a plain error: %#v", err)
			}

			c = client.New(ts.URL, opts("secret", "lobby"))
			if err := c.Connect(ctx5s(t)); err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			r, err := c.EmitWithAck(ctx5s(t), "whoami")
			var user, room, data string
			if err != nil || r.Decode(&user, &room, &data) != nil || user != "ann" || room != "lobby" || data != "secret" {
				t.Fatalf("whoami: %q %q %q %v", user, room, data, err)
			}

			noUser := &client.Options{Transports: opts("", "").Transports}
			if err := client.New(ts.URL, noUser).Connect(ctx5s(t)); err == nil {
				t.Fatal("HTTP middleware did not refuse the handshake")
			}
		})
	}
}

func TestDisconnect(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			hub := rally.NewHub(nil)
			reasons := make(chan string, 10)
			hub.OnDisconnect(func(s *rally.Socket, reason string) {
				if !slices.Contains(s.Rooms(), "kept") {
					reason += " (rooms already left)"
				}
				reasons <- reason
			})
			hub.OnConnect(func(s *rally.Socket) { s.Join("kept") })
			hub.On("kick me", func(s *rally.Socket, closeConn bool) { s.Disconnect(closeConn) })
			srv := sockettest.NewServer(t, hub)
			wantReason := func(want string) {
				t.Helper()
				select {
				case got := <-reasons:
					if got != want {
						t.Fatalf("server reason %q, want %q", got, want)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("no OnDisconnect")
				}
			}

			c := srv.Dial(t, "/", mode.opts)
			c.Emit("kick me", false)
			<-c.Done()
			if c.Reason() != client.ReasonServerDisconnect {
				t.Fatalf("client reason %q", c.Reason())
			}
			wantReason(rally.ReasonServerNamespaceDisconnect)

			c = srv.Dial(t, "/", mode.opts)
			c.Close()
			wantReason(rally.ReasonClientNamespaceDisconnect)

			// Disconnect(true) closes every namespace and the connection.
			hub.Of("/x")
			c = srv.Dial(t, "/", mode.opts)
			x := c.Manager().Socket("/x")
			srv.Connect(t, x)
			c.Emit("kick me", true)
			<-c.Done()
			<-x.Done()
			wantReason(rally.ReasonServerNamespaceDisconnect)
			if x.Reason() != client.ReasonServerDisconnect {
				t.Fatalf("other namespace reason %q", x.Reason())
			}
			if n := len(mustFetch(t, hub.All())); n != 0 {
				t.Fatalf("%d sockets left", n)
			}
		})
	}
}

func mustFetch(t *testing.T, b rally.Broadcast) []*rally.RemoteSocket {
	t.Helper()
	socks, err := b.FetchSockets(ctx5s(t))
	if err != nil {
		t.Fatal(err)
	}
	return socks
}

func TestServerAcks(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			hub := rally.NewHub(nil)
			srv := sockettest.NewServer(t, hub)
			release := make(chan struct{})
			t.Cleanup(func() { close(release) })
			var clients []*client.Socket
			for i := range 3 {
				c := srv.Socket(t, "/", mode.opts)
				c.On("question", func(q string) (string, []byte) { return q + "?", []byte{byte(i)} })
				c.On("silent", func() { <-release })
				srv.Connect(t, c)
				clients = append(clients, c)
			}
			s := hub.Of("/").Socket(clients[0].ID())
			r, err := s.EmitWithAck(ctx5s(t), "question", "why")
			var answer string
			var b []byte
			if err != nil || r.Decode(&answer, &b) != nil || answer != "why?" || len(b) != 1 || b[0] != 0 {
				t.Fatalf("ack: %q %v %v", answer, b, err)
			}

			replies, err := hub.EmitWithAck(ctx5s(t), "question", "all")
			if err != nil || len(replies) != 3 {
				t.Fatalf("broadcast ack: %d replies, %v", len(replies), err)
			}
			var got []int
			for _, r := range replies {
				r.Decode(&answer, &b)
				got = append(got, int(b[0]))
			}
			sort.Ints(got)
			if !slices.Equal(got, []int{0, 1, 2}) {
				t.Fatalf("replies from %v", got)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			if _, err := s.EmitWithAck(ctx, "silent"); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("unanswered ack: %v", err)
			}
			replies, err = hub.To("nobody").EmitWithAck(ctx5s(t), "question", "x")
			if err != nil || len(replies) != 0 {
				t.Fatalf("no target: %v %v", replies, err)
			}
		})
	}
}

func TestAckFailsOnDisconnect(t *testing.T) {
	hub := rally.NewHub(nil)
	srv := sockettest.NewServer(t, hub)
	c := srv.Socket(t, "/", nil)
	release := make(chan struct{})
	defer close(release)
	c.On("question", func() { <-release }) // does not answer in time
	srv.Connect(t, c)
	s := hub.Of("/").Socket(c.ID())
	done := make(chan error)
	go func() {
		_, err := s.EmitWithAck(context.Background(), "question")
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	s.Disconnect(false)
	select {
	case err := <-done:
		if !errors.Is(err, rally.ErrDisconnected) {
			t.Fatalf("got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("EmitWithAck still waiting after disconnect")
	}
}

func TestServerSideOperations(t *testing.T) {
	hub := rally.NewHub(nil)
	// Set in middleware, before the socket can be fetched: OnConnect
	// handlers run after the client has its CONNECT reply.
	hub.Use(func(s *rally.Socket) error {
		s.SetData(map[string]string{"nick": s.Handshake().Query.Get("nick")})
		return nil
	})
	srv := sockettest.NewServer(t, hub)
	a := join(t, srv, "/", &client.Options{Query: map[string][]string{"nick": {"ann"}}})
	b := join(t, srv, "/", &client.Options{Query: map[string][]string{"nick": {"bob"}}})

	if err := hub.All().SocketsJoin("everyone"); err != nil {
		t.Fatal(err)
	}
	if err := hub.In(b.c.ID()).SocketsJoin("b-room"); err != nil {
		t.Fatal(err)
	}
	socks := mustFetch(t, hub.In("everyone"))
	if len(socks) != 2 {
		t.Fatalf("fetched %d sockets", len(socks))
	}
	for _, s := range socks {
		nick := s.Data.(map[string]string)["nick"]
		want := []string{"everyone", s.ID}
		if nick == "bob" {
			want = append(want, "b-room")
		}
		sort.Strings(want)
		if !slices.Equal(s.Rooms, want) || s.Handshake.Query.Get("nick") != nick {
			t.Fatalf("%s: rooms %v, want %v", nick, s.Rooms, want)
		}
	}
	if socks := mustFetch(t, hub.In("everyone").Except("b-room")); len(socks) != 1 || socks[0].ID != a.c.ID() {
		t.Fatalf("fetch with except: %v", socks)
	}

	// A RemoteSocket acts on the live socket.
	remote := mustFetch(t, hub.In(a.c.ID()))[0]
	remote.Emit("hello", "ann")
	a.events.Wait(t, "hello")
	remote.Join("vip")
	if socks := mustFetch(t, hub.In("vip")); len(socks) != 1 {
		t.Fatalf("vip: %d", len(socks))
	}

	hub.All().SocketsLeave("everyone")
	if socks := mustFetch(t, hub.In("everyone")); len(socks) != 0 {
		t.Fatalf("everyone after leave: %d", len(socks))
	}
	hub.In("b-room").DisconnectSockets(false)
	<-b.c.Done()
	if socks := mustFetch(t, hub.All()); len(socks) != 1 {
		t.Fatalf("after disconnect: %d", len(socks))
	}
}

func TestEmitFromOutside(t *testing.T) {
	hub := rally.NewHub(nil)
	srv := sockettest.NewServer(t, hub)
	m := join(t, srv, "/", nil)
	// An ordinary HTTP endpoint emits to every client.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := hub.Emit("announcement", r.URL.Query().Get("text")); err != nil {
			http.Error(w, err.Error(), 500)
		}
	}))
	defer api.Close()
	res, err := http.Get(api.URL + "?text=hello")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var text string
	m.events.Expect(t, "announcement", &text)
	if text != "hello" {
		t.Fatalf("got %q", text)
	}
}

func TestShutdown(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			hub := rally.NewHub(nil)
			reasons := make(chan string, 1)
			hub.OnDisconnect(func(s *rally.Socket, reason string) { reasons <- reason })
			srv := sockettest.NewServer(t, hub)
			c := srv.Socket(t, "/", mode.opts)
			release := make(chan struct{})
			c.On("question", func() { <-release })
			lost := make(chan struct{}, 1) // the client reconnects, as the official one does
			c.OnDisconnect(func(string) {
				select {
				case lost <- struct{}{}:
				default:
				}
			})
			srv.Connect(t, c)
			s := hub.Of("/").Socket(c.ID())
			ackErr := make(chan error)
			go func() {
				_, err := s.EmitWithAck(context.Background(), "question")
				ackErr <- err
			}()
			time.Sleep(20 * time.Millisecond)
			if err := hub.Shutdown(ctx5s(t)); err != nil {
				t.Fatal(err)
			}
			close(release)
			if r := <-reasons; r != rally.ReasonServerShuttingDown {
				t.Fatalf("reason %q", r)
			}
			if err := <-ackErr; !errors.Is(err, rally.ErrDisconnected) {
				t.Fatalf("pending ack: %v", err)
			}
			<-lost
			if err := client.New(srv.URL, mode.opts).Connect(ctx5s(t)); err == nil {
				t.Fatal("handshake accepted after Shutdown")
			}
		})
	}
}

func TestVolatile(t *testing.T) {
	hub := rally.NewHub(nil)
	srv := sockettest.NewServer(t, hub)
	m := join(t, srv, "/", &client.Options{Transports: []string{client.TransportWebSocket}})
	// Of a burst of volatile emits some may be dropped, never reordered or
	// duplicated; a normal emit after them is always delivered. A burst on
	// an idle connection gets its first event through, so some burst
	// delivers something.
	next := 0
	for round := 0; round < 50 && m.events.Count("tick") == 0; round++ {
		for range 20 {
			hub.All().Volatile().Emit("tick", next)
			next++
		}
		hub.Emit("marker")
		m.events.Wait(t, "marker")
	}
	last := -1
	for _, e := range m.events.Events() {
		if e.Name != "tick" {
			continue
		}
		var i int
		e.Args.Decode(&i)
		if i <= last {
			t.Fatalf("tick %d after %d", i, last)
		}
		last = i
	}
	if last < 0 {
		t.Fatal("no volatile event delivered in 50 bursts")
	}
}

func TestOptionsReachTheWire(t *testing.T) {
	hub := rally.NewHub(&rally.Options{PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond, MaxHTTPBufferSize: 5000})
	srv := sockettest.NewServer(t, hub)
	res, err := http.Get(srv.URL + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var open struct {
		PingInterval, PingTimeout, MaxPayload int
	}
	body := make([]byte, 512)
	n, _ := res.Body.Read(body)
	if err := json.Unmarshal(body[1:n], &open); err != nil {
		t.Fatalf("%q: %v", body[:n], err)
	}
	if open.PingInterval != 300 || open.PingTimeout != 200 || open.MaxPayload != 5000 {
		t.Fatalf("open packet %s", body[:n])
	}
	// The connection stays up across several heartbeats.
	m := join(t, srv, "/", nil)
	time.Sleep(time.Second)
	if !m.c.Connected() {
		t.Fatalf("disconnected: %s", m.c.Reason())
	}
}

func TestConcurrentEmitters(t *testing.T) {
	hub := rally.NewHub(nil)
	srv := sockettest.NewServer(t, hub)
	m := join(t, srv, "/", nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				hub.To(m.c.ID()).Emit("n", g, i)
			}
		}()
	}
	wg.Wait()
	hub.Emit("marker")
	m.events.Wait(t, "marker")
	// Each goroutine's emits arrive complete and in its order.
	next := make([]int, 8)
	for _, e := range m.events.Events() {
		if e.Name != "n" {
			continue
		}
		var g, i int
		e.Args.Decode(&g, &i)
		if i != next[g] {
			t.Fatalf("goroutine %d: got %d, want %d", g, i, next[g])
		}
		next[g]++
	}
	for g, n := range next {
		if n != 50 {
			t.Fatalf("goroutine %d: %d events", g, n)
		}
	}
}

func TestHandshakeDetails(t *testing.T) {
	hub := rally.NewHub(nil)
	got := make(chan *rally.Handshake, 1)
	hub.OnConnect(func(s *rally.Socket) { got <- s.Handshake() })
	srv := sockettest.NewServer(t, hub)
	join(t, srv, "/", &client.Options{Header: http.Header{"X-Test": {"1"}}, Query: map[string][]string{"k": {"v"}}})
	h := <-got
	if h.Header.Get("X-Test") != "1" || h.Query.Get("k") != "v" || h.Query.Get("EIO") != "4" ||
		h.Address != "127.0.0.1" || h.Secure || !strings.HasPrefix(h.URL, "/socket.io/?") || h.Auth != nil {
		t.Fatalf("handshake %+v", h)
	}
}

func TestShutdownDoesNotWaitForIdlePolls(t *testing.T) {
	hub := rally.NewHub(nil)
	srv := sockettest.NewServer(t, hub)
	// A handshake and nothing else: no poll will come to collect anything.
	res, err := http.Get(srv.URL + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := hub.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v after %v", err, time.Since(start))
	}
}

// A socket's context ends at the disconnect: a handler still running sees
// it, and so do the OnDisconnect handlers, which keep its values.
func TestContextCanceledAtDisconnect(t *testing.T) {
	type key struct{}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			hub := rally.NewHub(nil)
			started := make(chan struct{})
			sawCancel := make(chan bool, 1)
			hub.On("wait", func(s *rally.Socket) {
				close(started)
				select {
				case <-s.Context().Done():
					sawCancel <- true
				case <-time.After(5 * time.Second):
					sawCancel <- false
				}
			})
			type seen struct {
				err   error
				value any
			}
			inDisconnect := make(chan seen, 1)
			hub.OnDisconnect(func(s *rally.Socket, reason string) {
				inDisconnect <- seen{s.Context().Err(), s.Context().Value(key{})}
			})
			withValue := func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), key{}, "v")))
				})
			}
			ts := httptest.NewServer(withValue(hub))
			t.Cleanup(func() { hub.Close(); ts.Close() })
			srv := &sockettest.Server{Server: ts, Hub: hub}
			c := srv.Dial(t, "/", mode.opts)
			c.Emit("wait")
			<-started
			start := time.Now()
			c.Close()
			if !<-sawCancel {
				t.Fatal("the running handler's context was not canceled at the disconnect")
			}
			t.Logf("handler saw the cancel %v after the client closed", time.Since(start))
			got := <-inDisconnect
			if got.err != context.Canceled || got.value != "v" {
				t.Fatalf("context in OnDisconnect: err %v, value %v; want canceled, with the request's value", got.err, got.value)
			}
		})
	}
}
