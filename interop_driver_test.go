package rally_test

// Interop scenarios driven step by step through testdata/interop/driver.js:
// rooms, broadcasts, namespaces, middleware and disconnects.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/internal/nodetest"
)

// driver controls the sockets of one driver.js process.
type driver struct {
	t    *testing.T
	p    *nodetest.Process
	tags int
	ids  map[string]string // socket name → socket id, once ready
}

func (s *interopServer) driver(t *testing.T) *driver {
	t.Helper()
	return &driver{t: t, p: s.node(t, "driver.js"), ids: map[string]string{}}
}

// open opens a socket without waiting for it. opts are client options.
func (d *driver) open(name, path string, opts map[string]any, replies map[string]any) {
	d.t.Helper()
	d.p.Send(map[string]any{"op": "open", "name": name, "path": path, "opts": opts, "replies": replies})
}

// ready waits until the socket is connected (and upgraded, in the default
// mode) and returns its id.
func (d *driver) ready(name string) string {
	d.t.Helper()
	l := waitEvent(d.t, d.p, "ready", map[string]any{"name": name})
	id := l.Text("id")
	if id == "" {
		d.t.Fatalf("socket %s is ready without an id: %s", name, l.Raw)
	}
	d.ids[name] = id
	return id
}

// openReady opens sockets on the main namespace, each on its own
// connection, and waits until they are ready.
func (d *driver) openReady(names ...string) {
	d.t.Helper()
	for _, name := range names {
		d.open(name, "", map[string]any{"forceNew": true}, nil)
	}
	for _, name := range names {
		d.ready(name)
	}
}

// emit emits an event from a socket, without ack.
func (d *driver) emit(name, ev string, args ...any) {
	d.t.Helper()
	d.p.Send(map[string]any{"op": "emit", "name": name, "ev": ev, "args": args})
}

// emitAck emits an event from a socket with an ack callback and returns
// the ack's arguments.
func (d *driver) emitAck(name, ev string, args ...any) any {
	d.t.Helper()
	d.tags++
	tag := fmt.Sprintf("%s-%d", ev, d.tags)
	if args == nil {
		args = []any{}
	}
	d.p.Send(map[string]any{"op": "emit", "name": name, "ev": ev, "args": args, "ack": true, "tag": tag})
	l := waitEvent(d.t, d.p, "ack", map[string]any{"name": name, "tag": tag})
	if e := l.Get("error"); e != nil {
		d.t.Fatalf("%s: emit %q with ack: %v", name, ev, e)
	}
	return l.Get("args")
}

// state returns the client-side state of a socket.
func (d *driver) state(name string) nodetest.Line {
	d.t.Helper()
	d.tags++
	tag := fmt.Sprint(d.tags)
	d.p.Send(map[string]any{"op": "state", "name": name, "tag": tag})
	return waitEvent(d.t, d.p, "state", map[string]any{"name": name, "tag": tag})
}

// sync emits "sync" with a fresh token on each namespace and waits until
// every named socket got it. A connection delivers in order, so whatever
// the namespaces emitted before has arrived too. It returns every line.
func (d *driver) sync(nsps []*rally.Namespace, names ...string) []nodetest.Line {
	d.t.Helper()
	d.tags++
	token := d.tags
	for _, n := range nsps {
		if err := n.Emit("sync", token); err != nil {
			d.t.Fatalf("Emit(sync): %v", err)
		}
	}
	return d.p.WaitFor(waitTimeout, fmt.Sprintf("sync %d at %v", token, names), func(lines []nodetest.Line) bool {
		for _, name := range names {
			if !slices.ContainsFunc(lines, func(l nodetest.Line) bool {
				return l.Event == "recv" && l.Text("name") == name && l.Text("ev") == "sync" &&
					jsonEqual(l.Get("args"), []any{token})
			}) {
				return false
			}
		}
		return true
	})
}

func jsonEqual(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// receivers counts, by socket name, the receptions of event ev whose args
// are args.
func receivers(t *testing.T, lines []nodetest.Line, ev string, args []any) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, l := range lines {
		if l.Event == "recv" && l.Text("ev") == ev {
			checkJSON(t, fmt.Sprintf("args of %s at %s", ev, l.Text("name")), l.Get("args"), args)
			got[l.Text("name")]++
		}
	}
	return got
}

// once returns the count map of names each receiving once.
func once(names ...string) map[string]int {
	m := map[string]int{}
	for _, n := range names {
		m[n] = 1
	}
	return m
}

func sortedStrings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, e := range list {
		s, _ := e.(string)
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// ---------------------------------------------------------------------
// Scenario: rooms.

func testInteropRooms(t *testing.T, mode string) {
	srv := startInterop(t, mode, nil, nil)
	hub := srv.hub
	hub.On("join", func(s *rally.Socket, rooms []string) []string {
		s.Join(rooms...)
		return s.Rooms()
	})
	hub.On("leave", func(s *rally.Socket, room string) []string {
		s.Leave(room)
		return s.Rooms()
	})

	d := srv.driver(t)
	names := []string{"a", "b", "c", "d"}
	d.openReady(names...)
	for name, rooms := range map[string][]any{"a": {"r1"}, "b": {"r1", "r2"}, "c": {"r2"}, "d": {}} {
		got := d.emitAck(name, "join", rooms)
		want := []string{d.ids[name]}
		for _, r := range rooms {
			want = append(want, r.(string))
		}
		slices.Sort(want)
		if got, ok := got.([]any); !ok || len(got) != 1 {
			t.Fatalf("join ack of %s: got %v, want one array", name, got)
		}
		checkJSON(t, "rooms of "+name+" after join", sortedStrings(got.([]any)[0]), want)
	}

	cases := []struct {
		name string
		emit func(ev string) error
		want map[string]int
	}{
		{"To(r1)", func(ev string) error { return hub.To("r1").Emit(ev, ev) }, once("a", "b")},
		{"To(r1, r2)", func(ev string) error { return hub.To("r1", "r2").Emit(ev, ev) }, once("a", "b", "c")},
		{"To(r1).To(r2)", func(ev string) error { return hub.To("r1").To("r2").Emit(ev, ev) }, once("a", "b", "c")},
		{"In(r2)", func(ev string) error { return hub.In("r2").Emit(ev, ev) }, once("b", "c")},
		{"To(r2).Except(r1)", func(ev string) error { return hub.To("r2").Except("r1").Emit(ev, ev) }, once("c")},
		{"Except(r1)", func(ev string) error { return hub.Except("r1").Emit(ev, ev) }, once("c", "d")},
		{"Except(r1, r2)", func(ev string) error { return hub.Except("r1", "r2").Emit(ev, ev) }, once("d")},
		{"To(id of d)", func(ev string) error { return hub.To(d.ids["d"]).Emit(ev, ev) }, once("d")},
		{"Except(id of a)", func(ev string) error { return hub.Except(d.ids["a"]).Emit(ev, ev) }, once("b", "c", "d")},
		{"To(empty room)", func(ev string) error { return hub.To("nobody").Emit(ev, ev) }, once()},
	}
	for i, c := range cases {
		if err := c.emit(fmt.Sprintf("case%d", i)); err != nil {
			t.Fatalf("%s: Emit: %v", c.name, err)
		}
	}
	lines := d.sync([]*rally.Namespace{hub.Of("/")}, names...)
	for i, c := range cases {
		ev := fmt.Sprintf("case%d", i)
		checkJSON(t, c.name+": receivers", receivers(t, lines, ev, []any{ev}), c.want)
	}

	// Leaving from a handler: b leaves r1.
	got := d.emitAck("b", "leave", "r1")
	checkJSON(t, "rooms of b after leave", sortedStrings(got.([]any)[0]), sortedStrings([]any{d.ids["b"], "r2"}))
	if err := hub.To("r1").Emit("after-leave", "after-leave"); err != nil {
		t.Fatal(err)
	}
	lines = d.sync([]*rally.Namespace{hub.Of("/")}, names...)
	checkJSON(t, "To(r1) after b left: receivers", receivers(t, lines, "after-leave", []any{"after-leave"}), once("a"))

	assertTransports(t, d.p, mode)
}

// ---------------------------------------------------------------------
// Scenario: the three broadcast variants.

func testInteropBroadcast(t *testing.T, mode string) {
	srv := startInterop(t, mode, nil, nil)
	hub := srv.hub
	hub.On("join", func(s *rally.Socket, room string) bool {
		s.Join(room)
		return true
	})
	// These answer the ack after the broadcast is queued, so a sync emitted
	// after the ack comes after the broadcast on every connection.
	hub.On("broadcast", func(s *rally.Socket, ev, msg string) error {
		return s.Broadcast().Emit(ev, msg)
	})
	hub.On("toRoom", func(s *rally.Socket, room, ev, msg string) error {
		return s.To(room).Emit(ev, msg)
	})

	d := srv.driver(t)
	names := []string{"a", "b", "c"}
	d.openReady(names...)
	d.emitAck("a", "join", "r")
	d.emitAck("b", "join", "r")

	cases := []struct {
		name    string
		trigger func(ev string)
		want    map[string]int
	}{
		{"hub.Emit", func(ev string) {
			if err := hub.Emit(ev, "msg"); err != nil {
				t.Fatal(err)
			}
		}, once("a", "b", "c")},
		{"a: s.Broadcast().Emit", func(ev string) { d.emitAck("a", "broadcast", ev, "msg") }, once("b", "c")},
		{"a: s.To(r).Emit (a in r)", func(ev string) { d.emitAck("a", "toRoom", "r", ev, "msg") }, once("b")},
		{"c: s.To(r).Emit (c not in r)", func(ev string) { d.emitAck("c", "toRoom", "r", ev, "msg") }, once("a", "b")},
		{"hub.To(r).Emit", func(ev string) {
			if err := hub.To("r").Emit(ev, "msg"); err != nil {
				t.Fatal(err)
			}
		}, once("a", "b")},
	}
	for i, c := range cases {
		ev := fmt.Sprintf("bcast%d", i)
		c.trigger(ev)
		lines := d.sync([]*rally.Namespace{hub.Of("/")}, names...)
		checkJSON(t, c.name+": receivers", receivers(t, lines, ev, []any{"msg"}), c.want)
	}

	assertTransports(t, d.p, mode)
}

// ---------------------------------------------------------------------
// Scenario: two namespaces on one connection, and an unknown namespace.

func testInteropNamespaces(t *testing.T, mode string) {
	var handshakes atomic.Int32
	countHandshakes := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("sid") == "" {
				handshakes.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	}
	srv := startInterop(t, mode, nil, countHandshakes)
	hub := srv.hub
	admin := hub.Of("/admin")
	hub.On("whoami", func(s *rally.Socket) (string, string, string) {
		return "main handler", s.Namespace().Name(), s.ID()
	})
	admin.On("whoami", func(s *rally.Socket) (string, string, string) {
		return "admin handler", s.Namespace().Name(), s.ID()
	})

	d := srv.driver(t)
	// io(url) and io(url + '/admin') share one Manager, so one connection.
	d.open("main", "", nil, nil)
	mainID := d.ready("main")
	d.open("admin", "/admin", nil, nil)
	adminID := d.ready("admin")

	mainConn := waitEvent(t, d.p, "connect", map[string]any{"name": "main"})
	adminConn := waitEvent(t, d.p, "connect", map[string]any{"name": "admin"})
	if mainConn.Text("sid") != adminConn.Text("sid") || mainConn.Get("manager") != adminConn.Get("manager") {
		t.Errorf("the two namespaces use different connections:\n%s\n%s", mainConn.Raw, adminConn.Raw)
	}
	if mainConn.Text("nsp") != "/" || adminConn.Text("nsp") != "/admin" || mainID == adminID {
		t.Errorf("connect lines: want nsp / and /admin with different ids:\n%s\n%s", mainConn.Raw, adminConn.Raw)
	}
	if hub.Of("/").Socket(mainID) == nil || admin.Socket(adminID) == nil {
		t.Errorf("the server does not know the sockets %s on / and %s on /admin", mainID, adminID)
	}
	if hub.Of("/").Socket(adminID) != nil || admin.Socket(mainID) != nil {
		t.Errorf("a socket is known in the wrong namespace")
	}

	// Each namespace has its own handlers.
	checkJSON(t, "whoami on /", d.emitAck("main", "whoami"), []any{"main handler", "/", mainID})
	checkJSON(t, "whoami on /admin", d.emitAck("admin", "whoami"), []any{"admin handler", "/admin", adminID})

	// Broadcasts stay in their namespace.
	if err := hub.Emit("news", "for /"); err != nil {
		t.Fatal(err)
	}
	if err := admin.Emit("news", "for /admin"); err != nil {
		t.Fatal(err)
	}
	lines := d.sync([]*rally.Namespace{hub.Of("/"), admin}, "main", "admin")
	checkJSON(t, "news on /", receivers(t, filterName(lines, "main"), "news", []any{"for /"}), once("main"))
	checkJSON(t, "news on /admin", receivers(t, filterName(lines, "admin"), "news", []any{"for /admin"}), once("admin"))

	// An unknown namespace on the same connection is refused; the others
	// stay connected.
	d.open("nope", "/nope", nil, nil)
	refused := waitEvent(t, d.p, "connect_error", map[string]any{"name": "nope"})
	if refused.Text("message") != "Invalid namespace" {
		t.Errorf("connect_error for /nope: got %s, want message \"Invalid namespace\"", refused.Raw)
	}
	checkJSON(t, "connect_error data for /nope", refused.Get("data"), map[string]any{"$undefined": true})
	checkJSON(t, "whoami on / after the refusal", d.emitAck("main", "whoami"), []any{"main handler", "/", mainID})
	checkJSON(t, "whoami on /admin after the refusal", d.emitAck("admin", "whoami"), []any{"admin handler", "/admin", adminID})

	if n := handshakes.Load(); n != 1 {
		t.Errorf("got %d Engine.IO handshakes, want 1 (one shared connection)", n)
	}
	assertTransports(t, d.p, mode)
}

func filterName(lines []nodetest.Line, name string) []nodetest.Line {
	var out []nodetest.Line
	for _, l := range lines {
		if l.Text("name") == name {
			out = append(out, l)
		}
	}
	return out
}

// ---------------------------------------------------------------------
// Scenario: connect middleware, auth payload, HTTP handshake middleware.

type userKey struct{}

func testInteropMiddleware(t *testing.T, mode string) {
	// HTTP middleware around the hub: the request context carries the user.
	withUser := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := context.WithValue(r.Context(), userKey{}, "user:"+r.URL.Query().Get("user"))
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
	srv := startInterop(t, mode, nil, withUser)
	hub := srv.hub

	type seen struct {
		auth json.RawMessage
		user any
	}
	seenByMiddleware := make(chan seen, 10)
	connected := make(chan string, 10)
	hub.Use(func(s *rally.Socket) error {
		seenByMiddleware <- seen{auth: slices.Clone(s.Handshake().Auth), user: s.Context().Value(userKey{})}
		var auth struct {
			Token string `json:"token"`
		}
		if err := s.Handshake().DecodeAuth(&auth); err != nil || auth.Token != "s3cret" {
			return &rally.ConnectError{Message: "not authorized", Data: map[string]any{"code": 42}}
		}
		s.SetData(map[string]any{"token": auth.Token})
		return nil
	})
	hub.OnConnect(func(s *rally.Socket) { connected <- s.ID() })
	hub.On("whoami", func(s *rally.Socket) (any, any) {
		return s.Data(), s.Context().Value(userKey{})
	})

	d := srv.driver(t)

	// Accepted: the auth payload and the HTTP middleware's value reach the
	// middleware and the handlers.
	d.open("good", "", map[string]any{"forceNew": true, "auth": map[string]any{"token": "s3cret"}, "query": map[string]any{"user": "alice"}}, nil)
	goodID := d.ready("good")
	got := recv(t, seenByMiddleware, "the middleware call for good")
	checkJSON(t, "auth seen by the middleware for good", got.auth, map[string]any{"token": "s3cret"})
	if got.user != "user:alice" {
		t.Errorf("request context value in the middleware: got %v, want user:alice", got.user)
	}
	if id := recv(t, connected, "the connection of good"); id != goodID {
		t.Errorf("OnConnect got socket %s, want %s", id, goodID)
	}
	checkJSON(t, "whoami", d.emitAck("good", "whoami"), []any{map[string]any{"token": "s3cret"}, "user:alice"})

	// Refused: wrong token, then no auth at all.
	for _, c := range []struct {
		name string
		opts map[string]any
		auth any // what the middleware sees, as JSON; nil for none
	}{
		{"bad", map[string]any{"forceNew": true, "auth": map[string]any{"token": "wrong"}, "query": map[string]any{"user": "mallory"}}, map[string]any{"token": "wrong"}},
		{"anon", map[string]any{"forceNew": true, "query": map[string]any{"user": "anon"}}, nil},
	} {
		d.open(c.name, "", c.opts, nil)
		l := waitEvent(t, d.p, "connect_error", map[string]any{"name": c.name})
		checkJSON(t, "connect_error of "+c.name, map[string]any{"message": l.Get("message"), "data": l.Get("data"), "active": l.Get("active")},
			map[string]any{"message": "not authorized", "data": map[string]any{"code": 42}, "active": false})
		got := recv(t, seenByMiddleware, "the middleware call for "+c.name)
		if c.auth == nil {
			if len(got.auth) != 0 {
				t.Errorf("auth seen by the middleware for %s: got %s, want none", c.name, got.auth)
			}
		} else {
			checkJSON(t, "auth seen by the middleware for "+c.name, got.auth, c.auth)
		}
		if want := "user:" + c.opts["query"].(map[string]any)["user"].(string); got.user != want {
			t.Errorf("request context value in the middleware for %s: got %v, want %s", c.name, got.user, want)
		}
		st := d.state(c.name)
		if st.Get("connected") != false || st.Get("active") != false {
			t.Errorf("%s after the refusal: got %s, want not connected and not active", c.name, st.Raw)
		}
	}
	// The good socket is unaffected, and no refused socket connected.
	checkJSON(t, "whoami after the refusals", d.emitAck("good", "whoami"), []any{map[string]any{"token": "s3cret"}, "user:alice"})
	select {
	case id := <-connected:
		t.Errorf("OnConnect ran for %s, a refused socket", id)
	default:
	}
	assertTransports(t, d.p, mode)
}

// ---------------------------------------------------------------------
// Scenario: server-initiated and client-initiated disconnects.

func testInteropDisconnect(t *testing.T, mode string) {
	srv := startInterop(t, mode, nil, nil)
	hub := srv.hub
	type gone struct{ id, reason string }
	disconnected := make(chan gone, 10)
	connects := make(chan string, 10)
	hub.OnConnect(func(s *rally.Socket) { connects <- s.ID() })
	hub.OnDisconnect(func(s *rally.Socket, reason string) { disconnected <- gone{s.ID(), reason} })

	d := srv.driver(t)
	names := []string{"kicked", "leaver", "closed"}
	d.openReady(names...)
	for range names {
		recv(t, connects, "a connection")
	}
	server := func(name string) *rally.Socket {
		t.Helper()
		s := hub.Of("/").Socket(d.ids[name])
		if s == nil {
			t.Fatalf("no server socket for %s (%s)", name, d.ids[name])
		}
		return s
	}

	steps := []struct {
		name         string
		do           func()
		clientReason string
		serverReason string
	}{
		{"kicked", func() { server("kicked").Disconnect(false) }, "io server disconnect", rally.ReasonServerNamespaceDisconnect},
		{"leaver", func() { d.p.Send(map[string]any{"op": "disconnect", "name": "leaver"}) }, "io client disconnect", rally.ReasonClientNamespaceDisconnect},
		{"closed", func() { server("closed").Disconnect(true) }, "io server disconnect", rally.ReasonServerNamespaceDisconnect},
	}
	for _, step := range steps {
		step.do()
		l := waitEvent(t, d.p, "disconnect", map[string]any{"name": step.name})
		checkJSON(t, step.name+": client disconnect", map[string]any{"reason": l.Get("reason"), "active": l.Get("active")},
			map[string]any{"reason": step.clientReason, "active": false})
		g := recv(t, disconnected, step.name+"'s OnDisconnect")
		if g != (gone{d.ids[step.name], step.serverReason}) {
			t.Errorf("%s: OnDisconnect got %+v, want {%s %s}", step.name, g, d.ids[step.name], step.serverReason)
		}
		if hub.Of("/").Socket(d.ids[step.name]) != nil {
			t.Errorf("%s: the server still lists the socket", step.name)
		}
	}
	// No automatic reconnection after a server disconnect.
	for _, name := range names {
		st := d.state(name)
		if st.Get("connected") != false || st.Get("active") != false {
			t.Errorf("%s: got %s, want not connected and not active", name, st.Raw)
		}
	}
	select {
	case id := <-connects:
		t.Errorf("unexpected connection %s after the disconnects", id)
	default:
	}
	select {
	case g := <-disconnected:
		t.Errorf("unexpected OnDisconnect %+v", g)
	default:
	}
	assertTransports(t, d.p, mode)
}
