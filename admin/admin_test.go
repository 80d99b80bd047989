package admin_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/admin"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/sockettest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// app is an instrumented hub on an httptest.Server whose clients join the
// rooms they ask for ("join" event); it keeps its sockets by id.
type app struct {
	*sockettest.Server
	inst *admin.Instrumentation

	mu      sync.Mutex
	sockets map[string]*rally.Socket
}

func newApp(t *testing.T, opts *admin.Options) *app {
	t.Helper()
	hub := rally.NewHub(nil)
	a := &app{sockets: make(map[string]*rally.Socket)}
	hub.OnConnect(func(s *rally.Socket) {
		a.mu.Lock()
		a.sockets[s.ID()] = s
		a.mu.Unlock()
	})
	hub.On("join", func(s *rally.Socket, room string) string { s.Join(room); return "ok" })
	hub.On("echo", func(s *rally.Socket, text string) { s.Emit("echo", text) })
	a.Server = sockettest.NewServer(t, hub)
	inst, err := admin.Instrument(hub, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inst.Close)
	a.inst = inst
	return a
}

func (a *app) socket(id string) *rally.Socket {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sockets[id]
}

// user connects a client to "/" and has it join rooms.
func (a *app) user(t *testing.T, rooms ...string) *client.Socket {
	t.Helper()
	c := a.Dial(t, "/", &client.Options{DisableReconnection: true})
	for _, room := range rooms {
		ctx, cancel := contextTimeout()
		_, err := c.EmitWithAck(ctx, "join", room)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// waitFor waits until the recorder holds an event named name for which
// match returns true, and returns it.
func waitFor(t *testing.T, r *sockettest.Recorder, name string, match func(rally.Reply) bool) rally.Reply {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, e := range r.Events() {
			if e.Name == name && match(e.Args) {
				return e.Args
			}
		}
		if time.Now().After(deadline) {
			var names []string
			for _, e := range r.Events() {
				names = append(names, e.Name)
			}
			t.Fatalf("no matching %q event within 10s; received %v", name, names)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func any1(rally.Reply) bool { return true }

// eventually waits until cond holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type serialized struct {
	ID        string         `json:"id"`
	ClientID  string         `json:"clientId"`
	Transport string         `json:"transport"`
	Nsp       string         `json:"nsp"`
	Data      map[string]any `json:"data"`
	Handshake struct {
		Address string            `json:"address"`
		Headers map[string]string `json:"headers"`
		Query   map[string]any    `json:"query"`
		Issued  int64             `json:"issued"`
		Secure  bool              `json:"secure"`
		Time    string            `json:"time"`
		URL     string            `json:"url"`
		Xdomain bool              `json:"xdomain"`
	} `json:"handshake"`
	Rooms []string `json:"rooms"`
}

func findSocket(list []serialized, id string) *serialized {
	for i := range list {
		if list[i].ID == id {
			return &list[i]
		}
	}
	return nil
}

func hash(t *testing.T, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestInstrumentRefusesUnusableOptions(t *testing.T) {
	hub := rally.NewHub(nil)
	defer hub.Close()
	for name, opts := range map[string]*admin.Options{
		"nil":      nil,
		"no auth":  {},
		"both":     {NoAuth: true, Auth: &admin.BasicAuth{Username: "a", PasswordHash: hash(t, "b")}},
		"bad hash": {Auth: &admin.BasicAuth{Username: "a", PasswordHash: "plaintext"}},
		"bad mode": {NoAuth: true, Mode: "staging"},
	} {
		if inst, err := admin.Instrument(hub, opts); err == nil {
			inst.Close()
			t.Errorf("%s: Instrument succeeded", name)
		}
	}
}

func TestConfigAndAllSockets(t *testing.T) {
	a := newApp(t, &admin.Options{NoAuth: true})
	alice := a.user(t, "room1", "room2")
	bob := a.user(t, "room1")

	ui := a.Socket(t, "/admin", nil)
	rec := sockettest.Record(ui)
	a.Connect(t, ui)

	var config struct {
		SupportedFeatures []string `json:"supportedFeatures"`
	}
	rec.Expect(t, "config", &config)
	want := []string{"EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT", "AGGREGATED_EVENTS", "ALL_EVENTS"}
	if !slices.Equal(config.SupportedFeatures, want) {
		t.Errorf("supportedFeatures = %v, want %v", config.SupportedFeatures, want)
	}
	var all []serialized
	rec.Expect(t, "all_sockets", &all)
	if rec.Count("session") != 0 {
		t.Error("a session id was sent without authentication")
	}

	s := findSocket(all, alice.ID())
	if s == nil {
		t.Fatalf("alice %s missing from all_sockets %+v", alice.ID(), all)
	}
	wantRooms := []string{alice.ID(), "room1", "room2"}
	slices.Sort(s.Rooms)
	slices.Sort(wantRooms)
	if !slices.Equal(s.Rooms, wantRooms) {
		t.Errorf("alice's rooms = %v", s.Rooms)
	}
	server := a.socket(alice.ID())
	if s.ClientID != server.ConnID()[:12] || s.Nsp != "/" || s.Transport != server.Transport() {
		t.Errorf("alice = %+v; want clientId %s, nsp /, transport %s", s, server.ConnID()[:12], server.Transport())
	}
	hs := s.Handshake
	if hs.Address != "127.0.0.1" || hs.Query["EIO"] != "4" || !strings.HasPrefix(hs.URL, "/socket.io/?") ||
		hs.Headers["host"] == "" || hs.Issued == 0 || hs.Time == "" || hs.Secure || hs.Xdomain {
		t.Errorf("alice's handshake = %+v", hs)
	}
	if s.Data == nil || len(s.Data) != 0 {
		t.Errorf("alice's data = %v, want {}", s.Data)
	}
	if b := findSocket(all, bob.ID()); b == nil || len(b.Rooms) != 2 {
		t.Errorf("bob = %+v", b)
	}
	if u := findSocket(all, ui.ID()); u == nil || u.Nsp != "/admin" {
		t.Errorf("the admin socket = %+v", u)
	}
}

func TestServerStats(t *testing.T) {
	a := newApp(t, &admin.Options{NoAuth: true, Mode: admin.Production, ServerID: "server-1"})
	alice := a.user(t, "room1")
	a.user(t)

	ui := a.Socket(t, "/admin", nil)
	rec := sockettest.Record(ui)
	a.Connect(t, ui)
	var config struct {
		SupportedFeatures []string `json:"supportedFeatures"`
	}
	rec.Expect(t, "config", &config)
	if want := []string{"EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT", "AGGREGATED_EVENTS"}; !slices.Equal(config.SupportedFeatures, want) {
		t.Errorf("supportedFeatures = %v, want %v", config.SupportedFeatures, want)
	}
	alice.Emit("echo", "hello")

	type stats struct {
		ServerID            string  `json:"serverId"`
		Hostname            string  `json:"hostname"`
		PID                 int     `json:"pid"`
		Uptime              float64 `json:"uptime"`
		ClientsCount        int     `json:"clientsCount"`
		PollingClientsCount int     `json:"pollingClientsCount"`
		AggregatedEvents    []struct {
			Timestamp int64  `json:"timestamp"`
			Type      string `json:"type"`
			SubType   string `json:"subType"`
			Count     int    `json:"count"`
		} `json:"aggregatedEvents"`
		Namespaces []struct {
			Name         string `json:"name"`
			SocketsCount int    `json:"socketsCount"`
		} `json:"namespaces"`
	}
	// Counts summed over the server_stats received, until they show the
	// three connections and the echo.
	var last stats
	totals := map[string]int{}
	seen := 0
	waitFor(t, rec, "server_stats", func(r rally.Reply) bool {
		seen++
		var st stats
		if err := r.Decode(&st); err != nil {
			t.Fatal(err)
		}
		for _, e := range st.AggregatedEvents {
			if e.Timestamp%1000 != 0 || e.Count <= 0 {
				t.Errorf("aggregated event %+v", e)
			}
			totals[e.Type+"/"+e.SubType] += e.Count
		}
		last = st
		return st.ClientsCount == 3 && totals["rawConnection/"] >= 3 && totals["packetsIn/"] >= 4 && totals["bytesOut/"] > 0
	})
	if last.ServerID != "server-1" || last.Hostname == "" || last.PID == 0 || last.Uptime <= 0 {
		t.Errorf("server_stats = %+v", last)
	}
	if totals["connection//"] < 2 || totals["connection//admin"] < 1 || totals["packetsOut/"] == 0 || totals["bytesIn/"] == 0 {
		t.Errorf("aggregated totals = %v", totals)
	}
	counts := map[string]int{}
	for _, n := range last.Namespaces {
		counts[n.Name] = n.SocketsCount
	}
	if counts["/"] != 2 || counts["/admin"] != 1 {
		t.Errorf("namespaces = %+v", last.Namespaces)
	}
	if rec.Count("all_sockets") != 0 {
		t.Error("all_sockets sent in production mode")
	}

	// A disconnection is counted with its reason.
	alice.Close()
	waitFor(t, rec, "server_stats", func(r rally.Reply) bool {
		var st stats
		r.Decode(&st)
		for _, e := range st.AggregatedEvents {
			if e.Type == "rawDisconnection" && e.SubType != "" {
				return true
			}
		}
		return false
	})
}

func TestBasicAuthAndSession(t *testing.T) {
	a := newApp(t, &admin.Options{Auth: &admin.BasicAuth{Username: "admin", PasswordHash: hash(t, "secret")}})

	for name, auth := range map[string]any{
		"none":            nil,
		"wrong password":  map[string]string{"username": "admin", "password": "nope"},
		"wrong user":      map[string]string{"username": "root", "password": "secret"},
		"unknown session": map[string]any{"sessionId": "0123456789abcdef"},
	} {
		c := a.Socket(t, "/admin", &client.Options{Auth: auth, DisableReconnection: true})
		ctx, cancel := contextTimeout()
		err := c.Connect(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "invalid credentials") {
			t.Errorf("%s: Connect = %v, want invalid credentials", name, err)
		}
	}

	ui := a.Socket(t, "/admin", &client.Options{Auth: map[string]string{"username": "admin", "password": "secret"}})
	rec := sockettest.Record(ui)
	a.Connect(t, ui)
	var session string
	rec.Expect(t, "session", &session)
	if len(session) != 16 {
		t.Errorf("session id %q", session)
	}
	rec.Wait(t, "config")
	rec.Wait(t, "all_sockets")
	names := []string{}
	for _, e := range rec.Events() {
		names = append(names, e.Name)
	}
	if i, j := slices.Index(names, "session"), slices.Index(names, "config"); i > j {
		t.Errorf("events %v: session after config", names)
	}

	// The UI reconnects with the session id alone.
	again := a.Socket(t, "/admin", &client.Options{Auth: map[string]any{"sessionId": session}})
	rec2 := sockettest.Record(again)
	a.Connect(t, again)
	rec2.Wait(t, "config")
	if rec2.Count("session") != 0 {
		t.Error("a new session id was sent to a socket that came with one")
	}
}

func TestMemoryStoreExpires(t *testing.T) {
	st := admin.NewMemoryStore(50 * time.Millisecond)
	ctx, cancel := contextTimeout()
	defer cancel()
	if err := st.SaveSession(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := st.SessionExists(ctx, "s1"); !ok {
		t.Fatal("a saved session does not exist")
	}
	if ok, _ := st.SessionExists(ctx, "s2"); ok {
		t.Fatal("an unknown session exists")
	}
	eventually(t, "the session to expire", func() bool {
		ok, _ := st.SessionExists(ctx, "s1")
		return !ok
	})
}

// adminClient connects a UI without authentication and waits for its
// all_sockets.
func adminClient(t *testing.T, a *app) (*client.Socket, *sockettest.Recorder) {
	t.Helper()
	ui := a.Socket(t, "/admin", nil)
	rec := sockettest.Record(ui)
	a.Connect(t, ui)
	rec.Wait(t, "config")
	return ui, rec
}

func TestCommands(t *testing.T) {
	a := newApp(t, &admin.Options{NoAuth: true, Mode: admin.Production})
	alice := a.user(t, "room1")
	bob := a.user(t)
	aliceEvents, bobEvents := sockettest.Record(alice), sockettest.Record(bob)
	ui, _ := adminClient(t, a)
	rooms := func(id string) []string {
		r := a.socket(id).Rooms()
		slices.Sort(r)
		return r
	}

	// emit to a room, then to the whole namespace
	ui.Emit("emit", "/", "room1", "news", "for room1", map[string]int{"n": 1})
	var text string
	var obj map[string]int
	aliceEvents.Expect(t, "news", &text, &obj)
	if text != "for room1" || obj["n"] != 1 {
		t.Errorf("news = %q %v", text, obj)
	}
	ui.Emit("emit", "/", nil, "news", "for all")
	bobEvents.Expect(t, "news", &text)
	if text != "for all" || aliceEvents.Count("news") != 2 && !waitCount(aliceEvents, "news", 2) {
		t.Errorf("emit to all: bob got %q, alice %d news", text, aliceEvents.Count("news"))
	}

	// join and leave, for one socket (its own room) and for a namespace
	ui.Emit("join", "/", "vip", bob.ID())
	eventually(t, "bob to join vip", func() bool { return slices.Contains(rooms(bob.ID()), "vip") })
	if slices.Contains(rooms(alice.ID()), "vip") {
		t.Error("alice joined vip too")
	}
	ui.Emit("join", "/", "everyone")
	eventually(t, "both to join everyone", func() bool {
		return slices.Contains(rooms(bob.ID()), "everyone") && slices.Contains(rooms(alice.ID()), "everyone")
	})
	ui.Emit("leave", "/", "everyone", "room1")
	eventually(t, "alice to leave everyone", func() bool { return !slices.Contains(rooms(alice.ID()), "everyone") })
	if !slices.Contains(rooms(bob.ID()), "everyone") {
		t.Error("bob left everyone too")
	}

	// commands on a namespace that does not exist are ignored, and create
	// none
	ui.Emit("join", "/nowhere", "x")

	// disconnect one socket
	ui.Emit("_disconnect", "/", false, alice.ID())
	select {
	case <-alice.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("alice was not disconnected")
	}
	eventually(t, "alice to be gone server side", func() bool { return !a.socket(alice.ID()).Connected() })
	if !a.socket(bob.ID()).Connected() {
		t.Error("bob was disconnected too")
	}
	for _, n := range a.Hub.Namespaces() {
		if n.Name() == "/nowhere" {
			t.Error("a command created namespace /nowhere")
		}
	}
	// and every socket of a namespace
	ui.Emit("_disconnect", "/", true)
	select {
	case <-bob.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("bob was not disconnected")
	}
}

func waitCount(r *sockettest.Recorder, name string, n int) bool {
	deadline := time.Now().Add(10 * time.Second)
	for r.Count(name) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	return r.Count(name) >= n
}

func TestReadOnlyRefusesCommands(t *testing.T) {
	a := newApp(t, &admin.Options{NoAuth: true, ReadOnly: true})
	alice := a.user(t)
	aliceEvents := sockettest.Record(alice)

	ui := a.Socket(t, "/admin", nil)
	rec := sockettest.Record(ui)
	a.Connect(t, ui)
	var config struct {
		SupportedFeatures []string `json:"supportedFeatures"`
	}
	rec.Expect(t, "config", &config)
	if want := []string{"AGGREGATED_EVENTS", "ALL_EVENTS"}; !slices.Equal(config.SupportedFeatures, want) {
		t.Errorf("supportedFeatures = %v, want %v", config.SupportedFeatures, want)
	}
	// A socket's events are handled in order: once the admin socket's
	// ping is answered, the commands sent before it were handled.
	a.inst.Namespace().On("ping", func(*rally.Socket) string { return "pong" })
	ui.Emit("join", "/", "vip")
	ui.Emit("emit", "/", nil, "news", "x")
	ui.Emit("_disconnect", "/", true)
	ctx, cancel := contextTimeout()
	defer cancel()
	if _, err := ui.EmitWithAck(ctx, "ping"); err != nil {
		t.Fatal(err)
	}
	alice.Emit("echo", "after") // and alice's own events still arrive
	aliceEvents.Wait(t, "echo")
	if aliceEvents.Count("news") != 0 || slices.Contains(a.socket(alice.ID()).Rooms(), "vip") || !alice.Connected() {
		t.Error("a command had an effect in read-only mode")
	}
}

func TestDevelopmentNotifications(t *testing.T) {
	a := newApp(t, &admin.Options{NoAuth: true})
	ui, rec := adminClient(t, a)
	_ = ui

	alice := a.user(t, "room1")
	var connected serialized
	waitFor(t, rec, "socket_connected", func(r rally.Reply) bool {
		var ts string
		if err := r.Decode(&connected, &ts); err != nil {
			t.Fatal(err)
		}
		if _, err := time.Parse(time.RFC3339, ts); err != nil {
			t.Errorf("timestamp %q: %v", ts, err)
		}
		return connected.ID == alice.ID()
	})
	server := a.socket(alice.ID())
	if connected.Nsp != "/" || connected.ClientID != server.ConnID()[:12] || !slices.Equal(connected.Rooms, []string{alice.ID()}) {
		t.Errorf("socket_connected %+v", connected)
	}
	waitFor(t, rec, "room_joined", func(r rally.Reply) bool {
		var nsp, room, id string
		r.Decode(&nsp, &room, &id)
		return nsp == "/" && room == "room1" && id == alice.ID()
	})
	for _, e := range rec.Events() {
		var nsp, room string
		if e.Name == "room_joined" && e.Args.Decode(&nsp, &room) == nil && room == alice.ID() {
			t.Error("room_joined sent for the socket's own room, which socket_connected lists")
		}
	}

	// events both ways, with their arguments
	alice.Emit("echo", "hi")
	waitFor(t, rec, "event_received", func(r rally.Reply) bool {
		var nsp, id string
		var args []any
		r.Decode(&nsp, &id, &args)
		return nsp == "/" && id == alice.ID() && slices.Equal(args, []any{"echo", "hi"})
	})
	waitFor(t, rec, "event_sent", func(r rally.Reply) bool {
		var nsp, id string
		var args []any
		r.Decode(&nsp, &id, &args)
		return nsp == "/" && id == alice.ID() && slices.Equal(args, []any{"echo", "hi"})
	})

	// data set by the application
	server.SetData(map[string]string{"user": "alice"})
	waitFor(t, rec, "socket_updated", func(r rally.Reply) bool {
		var u struct {
			ID   string            `json:"id"`
			Nsp  string            `json:"nsp"`
			Data map[string]string `json:"data"`
		}
		r.Decode(&u)
		return u.ID == alice.ID() && u.Nsp == "/" && u.Data["user"] == "alice"
	})

	// leaving a room, then disconnecting (which leaves the others)
	server.Leave("room1")
	waitFor(t, rec, "room_left", func(r rally.Reply) bool {
		var nsp, room, id string
		r.Decode(&nsp, &room, &id)
		return room == "room1" && id == alice.ID()
	})
	alice.Disconnect()
	waitFor(t, rec, "socket_disconnected", func(r rally.Reply) bool {
		var nsp, id, reason string
		r.Decode(&nsp, &id, &reason)
		return nsp == "/" && id == alice.ID() && reason == rally.ReasonClientNamespaceDisconnect
	})
	waitFor(t, rec, "room_left", func(r rally.Reply) bool {
		var nsp, room, id string
		r.Decode(&nsp, &room, &id)
		return room == alice.ID() && id == alice.ID()
	})
}

func TestTransportUpgradeNotified(t *testing.T) {
	a := newApp(t, &admin.Options{NoAuth: true})
	_, rec := adminClient(t, a)
	c := a.Dial(t, "/", &client.Options{DisableReconnection: true}) // polling, then websocket
	waitFor(t, rec, "socket_updated", func(r rally.Reply) bool {
		var u map[string]any
		r.Decode(&u)
		return u["id"] == c.ID() && u["transport"] == rally.TransportWebSocket
	})
}

func TestCloseStopsReports(t *testing.T) {
	a := newApp(t, &admin.Options{NoAuth: true})
	ui, _ := adminClient(t, a)
	a.inst.Close()
	select {
	case <-ui.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the admin socket stayed connected after Close")
	}
	c := a.Socket(t, "/admin", &client.Options{DisableReconnection: true})
	ctx, cancel := contextTimeout()
	defer cancel()
	if err := c.Connect(ctx); err == nil {
		t.Error("the admin namespace let a socket in after Close")
	}
	a.inst.Close() // twice is harmless
}

func contextTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}
