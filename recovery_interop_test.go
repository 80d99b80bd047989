package rally_test

// Connection state recovery with the official client: the same script
// (testdata/interop/recovery.js) against rally and against Node's server
// with connectionStateRecovery, every transport mode.

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/internal/nodetest"
)

// recoveryHandlers mirrors the "recovery" scenario of server.js.
func recoveryHandlers(hub *rally.Hub) {
	var middlewareRuns atomic.Int64
	hub.Use(func(s *rally.Socket) error {
		middlewareRuns.Add(1)
		return nil
	})
	hub.On("join", func(s *rally.Socket, room string) any {
		s.Join(room)
		return nil
	})
	hub.On("set data", func(s *rally.Socket, v any) any {
		s.SetData(v)
		return nil
	})
	hub.On("hello me", func(s *rally.Socket, n int) any {
		s.Emit("private", n)
		return nil
	})
	hub.On("send", func(s *rally.Socket, spec struct {
		To, Except []string
		Ev         string
		Args       []any
		Volatile   bool
	}) any {
		b := hub.To(spec.To...).Except(spec.Except...)
		if spec.Volatile {
			b = b.Volatile()
		}
		b.Emit(spec.Ev, spec.Args...)
		return nil
	})
	hub.On("whoami", func(s *rally.Socket) any {
		var rooms []string
		for _, r := range s.Rooms() {
			if r == s.ID() {
				r = "$self"
			}
			rooms = append(rooms, r)
		}
		slices.Sort(rooms)
		return map[string]any{"recovered": s.Recovered(), "data": s.Data(), "rooms": rooms, "middlewareRuns": middlewareRuns.Load()}
	})
	hub.OnDisconnect(func(s *rally.Socket, reason string) { hub.Emit("gone", reason) })
	hub.OnConnect(func(s *rally.Socket) { s.Emit("hi", s.Recovered()) })
}

// recoveryClient drives recovery.js.
type recoveryClient struct {
	t *testing.T
	p *nodetest.Process
}

func (c recoveryClient) send(cmd map[string]any) { c.p.Send(cmd) }

// emit emits with an ack and waits for it.
func (c recoveryClient) emit(name, ev string, args ...any) {
	c.t.Helper()
	n := len(waitEventsNow(c.p, "ack", map[string]any{"name": name, "ev": ev}))
	c.send(map[string]any{"op": "emit", "name": name, "ev": ev, "args": args})
	waitEvents(c.t, c.p, n+1, "ack", map[string]any{"name": name, "ev": ev})
}

// waitEventsNow returns the lines already printed that match.
func waitEventsNow(p *nodetest.Process, event string, match map[string]any) []nodetest.Line {
	var found []nodetest.Line
	for _, l := range p.Lines() {
		if l.Event == event && nodetest.Contains(l, match) {
			found = append(found, l)
		}
	}
	return found
}

// recoveryTranscript runs the scenario: socket a joins a room, sets data
// and receives events; its connection is cut (by cut); while it is away,
// socket b has events sent to every kind of target; a reconnects and is
// recovered. Then a disconnects on purpose and is not. It returns what a
// saw, with ids and offsets replaced by placeholders.
func recoveryTranscript(t *testing.T, p *nodetest.Process, cut func(c recoveryClient)) []any {
	c := recoveryClient{t, p}
	c.send(map[string]any{"op": "open", "name": "a", "opts": map[string]any{"forceNew": true, "reconnection": false}})
	c.send(map[string]any{"op": "open", "name": "b", "opts": map[string]any{"forceNew": true}})
	waitEvent(t, p, "ready", map[string]any{"name": "a"})
	aID := waitEvent(t, p, "recovery", map[string]any{"name": "a"}).Text("id")
	waitEvent(t, p, "recovery", map[string]any{"name": "b"})
	waitEvent(t, p, "ready", map[string]any{"name": "b"})

	c.emit("a", "join", "r1")
	c.emit("a", "set data", map[string]any{"name": "ann"})
	c.emit("a", "hello me", 1)
	c.emit("b", "send", map[string]any{"ev": "news", "args": []any{1}})
	waitEvent(t, p, "recv", map[string]any{"name": "a", "ev": "news"})

	cut(c)
	waitEvent(t, p, "disconnect", map[string]any{"name": "a"})
	waitEvent(t, p, "recv", map[string]any{"name": "b", "ev": "gone"})
	for _, spec := range []map[string]any{
		{"ev": "news", "args": []any{2}},
		{"to": []string{"r1"}, "ev": "room news", "args": []any{3}},
		{"to": []string{"r1"}, "except": []string{"r1"}, "ev": "not you", "args": []any{4}},
		{"to": []string{aID}, "ev": "direct", "args": []any{5}},
		{"volatile": true, "ev": "volatile", "args": []any{6}},
		{"to": []string{"r2"}, "ev": "other room", "args": []any{7}},
		{"except": []string{aID}, "ev": "not me", "args": []any{8}},
		{"ev": "news", "args": []any{9}},
	} {
		c.emit("b", "send", spec)
	}
	c.send(map[string]any{"op": "connect", "name": "a"})
	waitEvents(t, p, 2, "recovery", map[string]any{"name": "a"})
	c.emit("a", "whoami")

	c.send(map[string]any{"op": "disconnect", "name": "a"})
	waitEvents(t, p, 2, "disconnect", map[string]any{"name": "a"})
	waitEvents(t, p, 2, "recv", map[string]any{"name": "b", "ev": "gone"})
	c.emit("b", "send", map[string]any{"ev": "news", "args": []any{10}})
	c.send(map[string]any{"op": "connect", "name": "a"})
	waitEvents(t, p, 3, "recovery", map[string]any{"name": "a"})
	c.emit("a", "whoami")
	return transcriptOf(p, "a")
}

// transcriptOf returns what socket name saw: its connects, events,
// acks and disconnects, with socket ids numbered in order of appearance
// and the offsets recovery appends to events (a last string argument
// after the event's own) replaced by "$offset".
func transcriptOf(p *nodetest.Process, name string) []any {
	ids := map[string]string{}
	var out []any
	for _, l := range p.Lines() {
		if l.Text("name") != name {
			continue
		}
		switch l.Event {
		case "recovery":
			id := l.Text("id")
			if ids[id] == "" {
				ids[id] = "id" + strconv.Itoa(len(ids)+1)
			}
			out = append(out, map[string]any{"connect": ids[id], "recovered": l.Get("recovered")})
		case "recv":
			args, _ := l.Get("args").([]any)
			if len(args) >= 2 {
				if _, ok := args[len(args)-1].(string); ok {
					args[len(args)-1] = "$offset"
				}
			}
			out = append(out, map[string]any{l.Text("ev"): args})
		case "ack":
			out = append(out, map[string]any{"ack " + l.Text("ev"): l.Get("args")})
		case "disconnect":
			out = append(out, map[string]any{"disconnect": l.Text("reason")})
		case "connect_error":
			out = append(out, map[string]any{"connect_error": l.Text("message")})
		}
	}
	return out
}

func TestInteropRecovery(t *testing.T) {
	forEachInteropMode(t, func(t *testing.T, mode string) {
		srv := startInterop(t, mode, &rally.Options{ConnectionStateRecovery: &rally.Recovery{}}, nil)
		recoveryHandlers(srv.hub)
		clientCut := func(c recoveryClient) { c.send(map[string]any{"op": "cut", "name": "a"}) }
		got := recoveryTranscript(t, srv.node(t, "recovery.js"), clientCut)

		offset := "$offset"
		recovered := []any{
			map[string]any{"connect": "id1", "recovered": false},
			map[string]any{"hi": []any{false, offset}},
			map[string]any{"ack join": nil},
			map[string]any{"ack set data": nil},
			map[string]any{"private": []any{1, offset}},
			map[string]any{"ack hello me": nil},
			map[string]any{"news": []any{1, offset}},
			map[string]any{"disconnect": "forced close"},
			map[string]any{"gone": []any{"transport close", offset}},
			map[string]any{"news": []any{2, offset}},
			map[string]any{"room news": []any{3, offset}},
			map[string]any{"direct": []any{5, offset}},
			map[string]any{"news": []any{9, offset}},
			map[string]any{"connect": "id1", "recovered": true},
			map[string]any{"hi": []any{true, offset}},
			map[string]any{"ack whoami": map[string]any{"recovered": true, "data": map[string]any{"name": "ann"}, "rooms": []any{"$self", "r1"}, "middlewareRuns": 2}},
			map[string]any{"disconnect": "io client disconnect"},
		}
		want := append(slices.Clip(recovered),
			map[string]any{"connect": "id2", "recovered": false},
			map[string]any{"hi": []any{false, offset}},
			map[string]any{"ack whoami": map[string]any{"recovered": false, "data": nil, "rooms": []any{"$self"}, "middlewareRuns": 3}},
		)
		checkJSON(t, "what the client saw of rally", got, want)

		node := nodetest.Start(t, "server.js", nodetest.Options{
			Args:    []string{"recovery"},
			Env:     []string{"RALLY_TRANSPORT=" + mode, "RALLY_RECOVERY_MS=120000"},
			Timeout: 2 * time.Minute,
		})
		nodeURL := waitEvent(t, node, "listening", nil).Text("url")
		nodeSeen := recoveryTranscript(t, (&interopServer{url: nodeURL, mode: mode}).node(t, "recovery.js"), clientCut)
		// After the deliberate disconnect, Node's in-memory adapter
		// restores the session persisted at the cut a second time (it
		// keeps sessions it restored), with the rooms and data of then:
		// the socket is "recovered" with stale state. rally restores a
		// session once, as Node's Redis Streams adapter does (GETDEL).
		checkJSON(t, "what the client saw of rally and of Node, up to the deliberate disconnect",
			got[:min(len(got), len(recovered))], nodeSeen[:min(len(nodeSeen), len(recovered))])
	})
}

// TestInteropRecoveryAfterNetworkFailure cuts every TCP connection of the
// client, and refuses new ones for 1.5 s, while three goroutines send it
// numbered ticks, each every millisecond: two broadcast to everyone, one
// emits to the socket itself while it is connected. The client,
// reconnecting by itself, must be recovered and see every tick sent
// exactly once, each sender's in order, with offsets that only grow.
func TestInteropRecoveryAfterNetworkFailure(t *testing.T) {
	forEachInteropMode(t, func(t *testing.T, mode string) {
		opts := &rally.Options{ConnectionStateRecovery: &rally.Recovery{}}
		if mode == "polling" {
			// A cut between two polls leaves no request to fail: the
			// server learns of it by the ping timeout.
			opts.PingInterval, opts.PingTimeout = 500*time.Millisecond, 500*time.Millisecond
		}
		srv := startInterop(t, mode, opts, nil)
		disconnected := make(chan string, 1)
		srv.hub.OnDisconnect(func(s *rally.Socket, reason string) {
			select {
			case disconnected <- reason:
			default:
			}
		})
		p := srv.node(t, "recovery.js")
		c := recoveryClient{t, p}
		c.send(map[string]any{"op": "open", "name": "a", "opts": map[string]any{"reconnectionDelay": 300, "randomizationFactor": 0}})
		waitEvent(t, p, "ready", map[string]any{"name": "a"})
		id := waitEvent(t, p, "recovery", map[string]any{"name": "a"}).Text("id")

		senders := []func(n int) bool{
			func(n int) bool { return srv.hub.Emit("tick", 0, n) == nil },
			func(n int) bool { return srv.hub.Emit("tick", 1, n) == nil },
			func(n int) bool {
				s := srv.hub.Of("/").Socket(id)
				return s != nil && s.Emit("tick", 2, n) == nil
			},
		}
		stop := make(chan struct{})
		sent := make([]int, len(senders))
		var wg sync.WaitGroup
		for g, send := range senders {
			wg.Go(func() {
				tick := time.NewTicker(time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						if send(sent[g]) {
							sent[g]++
						}
					}
				}
			})
		}
		waitEvents(t, p, 60, "recv", map[string]any{"name": "a", "ev": "tick"})
		srv.cutConnections(1500 * time.Millisecond)
		select {
		case reason := <-disconnected:
			t.Logf("the server saw %q", reason)
		case <-time.After(waitTimeout):
			t.Fatal("the server did not see the connection fail")
		}
		l := waitEvents(t, p, 2, "recovery", map[string]any{"name": "a"})
		if l[1].Get("recovered") != true || l[1].Text("id") != id {
			t.Errorf("after the cut: %s; before: %s", l[1].Raw, l[0].Raw)
		}
		recovered := len(waitEventsNow(p, "recv", map[string]any{"name": "a", "ev": "tick"}))
		waitEvents(t, p, recovered+60, "recv", map[string]any{"name": "a", "ev": "tick"})
		close(stop)
		wg.Wait()
		total := sent[0] + sent[1] + sent[2]
		got := waitEvents(t, p, total, "recv", map[string]any{"name": "a", "ev": "tick"})
		next := make([]int, len(senders))
		var last uint64
		for _, l := range got {
			args := l.Get("args").([]any)
			if len(args) != 3 {
				t.Fatalf("tick without an offset: %s", l.Raw)
			}
			g, n := int(args[0].(float64)), int(args[1].(float64))
			if n != next[g] {
				t.Fatalf("sender %d: tick %d after %d: %s", g, n, next[g]-1, l.Raw)
			}
			next[g]++
			offset, err := strconv.ParseUint(args[2].(string), 36, 64)
			if err != nil || offset <= last {
				t.Fatalf("offset %v after %d: %s", args[2], last, l.Raw)
			}
			last = offset
		}
		replayed, away := 0, false
		for _, l := range p.Lines() {
			switch {
			case l.Event == "disconnect":
				away = true
			case l.Event == "recovery" && away:
				away = false
			case l.Event == "recv" && away:
				replayed++
			}
		}
		t.Logf("%d ticks sent (by sender: %v), %d received, %d of them replayed at the reconnection", total, sent, len(got), replayed)
		if replayed == 0 {
			t.Error("no tick was sent while the client was away")
		}
		if len(got) != total {
			t.Errorf("%d ticks received, %d sent", len(got), total)
		}
	})
}

// TestInteropRecoveryRefused checks the cases where a client that lost
// its connection is not recovered, or is after its middleware ran: it
// gets a new socket id unless recovered, and only then the events it
// missed.
func TestInteropRecoveryRefused(t *testing.T) {
	nodetest.Node(t)
	for _, tc := range []struct {
		name     string
		recovery rally.Recovery
		queue    int64                // Options.MaxQueuedBytes
		away     func(hub *rally.Hub) // what is sent while the client is away
		wait     time.Duration        // how long it stays away after that
		refuse   bool                 // the middleware refuses recovered sockets
		want     []any                // after the disconnect
	}{{
		name:     "expired",
		recovery: rally.Recovery{MaxDisconnectionDuration: 300 * time.Millisecond},
		away:     func(hub *rally.Hub) { hub.Emit("news", 2) },
		wait:     time.Second,
		want: []any{
			map[string]any{"connect": "id2", "recovered": false},
			map[string]any{"middleware runs": []any{2.0, false, "$offset"}},
		},
	}, {
		name:     "missed more than MaxMissedPackets",
		recovery: rally.Recovery{MaxMissedPackets: 2},
		away:     func(hub *rally.Hub) { hub.Emit("news", 2); hub.Emit("news", 3); hub.Emit("news", 4) },
		want: []any{
			map[string]any{"connect": "id2", "recovered": false},
			map[string]any{"middleware runs": []any{2.0, false, "$offset"}},
		},
	}, {
		name:     "its offset was dropped to stay within MaxBufferedBytes",
		recovery: rally.Recovery{MaxBufferedBytes: 4000},
		away:     func(hub *rally.Hub) { hub.Emit("news", strings.Repeat("x", 5000)) },
		want: []any{
			map[string]any{"connect": "id2", "recovered": false},
			map[string]any{"middleware runs": []any{2.0, false, "$offset"}},
		},
	}, {
		// Sent at once, they would fill the queue before the CONNECT
		// reply: the client, disconnected, would come back for them
		// again and again.
		name:  "missed more than half of MaxQueuedBytes",
		queue: 20_000,
		away: func(hub *rally.Hub) {
			for range 5 {
				hub.Emit("news", strings.Repeat("x", 5000))
			}
		},
		want: []any{
			map[string]any{"connect": "id2", "recovered": false},
			map[string]any{"middleware runs": []any{2.0, false, "$offset"}},
		},
	}, {
		name:     "missed MaxMissedPackets, with RunMiddleware",
		recovery: rally.Recovery{MaxMissedPackets: 2, RunMiddleware: true},
		away:     func(hub *rally.Hub) { hub.Emit("news", 2); hub.To("nobody").Emit("news", 0); hub.Emit("news", 3) },
		want: []any{
			map[string]any{"news": []any{2.0, "$offset"}},
			map[string]any{"news": []any{3.0, "$offset"}},
			map[string]any{"connect": "id1", "recovered": true},
			map[string]any{"middleware runs": []any{2.0, true, "$offset"}},
		},
	}, {
		name:     "refused by RunMiddleware",
		recovery: rally.Recovery{RunMiddleware: true},
		away:     func(hub *rally.Hub) { hub.Emit("news", 2) },
		refuse:   true,
		want: []any{
			map[string]any{"connect_error": "no recovery here"},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startInterop(t, "websocket", &rally.Options{ConnectionStateRecovery: &tc.recovery, MaxQueuedBytes: tc.queue}, nil)
			var runs atomic.Int64
			srv.hub.Use(func(s *rally.Socket) error {
				runs.Add(1)
				if tc.refuse && s.Recovered() {
					return errors.New("no recovery here")
				}
				return nil
			})
			srv.hub.OnConnect(func(s *rally.Socket) { s.Emit("middleware runs", runs.Load(), s.Recovered()) })
			disconnected := make(chan struct{}, 1)
			srv.hub.OnDisconnect(func(*rally.Socket, string) { disconnected <- struct{}{} })

			p := srv.node(t, "recovery.js")
			c := recoveryClient{t, p}
			c.send(map[string]any{"op": "open", "name": "a", "opts": map[string]any{"reconnection": false}})
			waitEvent(t, p, "ready", map[string]any{"name": "a"})
			srv.hub.Emit("news", 1)
			waitEvent(t, p, "recv", map[string]any{"name": "a", "ev": "news"})
			c.send(map[string]any{"op": "cut", "name": "a"})
			select {
			case <-disconnected:
			case <-time.After(waitTimeout):
				t.Fatal("the server did not see the client go")
			}
			tc.away(srv.hub)
			time.Sleep(tc.wait)
			c.send(map[string]any{"op": "connect", "name": "a"})
			if tc.refuse {
				waitEvent(t, p, "connect_error", map[string]any{"name": "a"})
			} else {
				waitEvents(t, p, 2, "recv", map[string]any{"name": "a", "ev": "middleware runs"})
			}
			got := transcriptOf(p, "a")
			i := slices.IndexFunc(got, func(e any) bool { _, ok := e.(map[string]any)["disconnect"]; return ok })
			checkJSON(t, "what the client saw after the disconnect", got[i+1:], tc.want)
		})
	}
}
