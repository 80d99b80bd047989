package rally_test

// Acknowledgements answered through rally.Ack, checked with the official
// client in every transport mode and against the official Node server
// running the same handlers (testdata/interop/server.js): what the client
// sees must be the same.

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/internal/nodetest"
)

// ackHandlers registers what server.js's "acks" scenario registers.
func ackHandlers(hub *rally.Hub) {
	hub.On("echo", func(s *rally.Socket, ack rally.Ack, args ...any) { ack.Send(args...) })
	hub.On("sleep", func(s *rally.Socket, ms int, ack rally.Ack) {
		go func() {
			time.Sleep(time.Duration(ms) * time.Millisecond)
			ack.Send(ms)
		}()
	})
	hub.On("quiet", func(s *rally.Socket, ack rally.Ack) {})
	hub.On("requested", func(s *rally.Socket, ack rally.Ack) {
		s.Emit("requested", ack.Requested())
		ack.Send()
	})
	hub.On("failing", func(s *rally.Socket, ack rally.Ack) error { return errors.New("nope") })
}

// ackTranscript drives one client through the acks scenario and returns
// what it saw, step by step.
func ackTranscript(t *testing.T, d *driver) []any {
	t.Helper()
	d.openReady("c")
	var seen []any
	step := func(name string, v any) { seen = append(seen, map[string]any{name: v}) }

	step("echo two", d.emitAck("c", "echo", "a", "b"))
	step("echo none", d.emitAck("c", "echo"))
	step("echo binary", d.emitAck("c", "echo", map[string]any{"$buffer": "0102"}, "x", map[string]any{"$buffer": "03"}))

	// A slow answer does not hold up a fast one sent after it.
	d.p.Send(map[string]any{"op": "emit", "name": "c", "ev": "sleep", "args": []any{400}, "ack": true, "tag": "slow"})
	d.p.Send(map[string]any{"op": "emit", "name": "c", "ev": "sleep", "args": []any{10}, "ack": true, "tag": "fast"})
	waitEvent(t, d.p, "ack", map[string]any{"name": "c", "tag": "slow"})
	waitEvent(t, d.p, "ack", map[string]any{"name": "c", "tag": "fast"})
	var order []any // in the order the client got them
	for _, l := range d.p.Lines() {
		if tag := l.Text("tag"); l.Event == "ack" && (tag == "slow" || tag == "fast") {
			order = append(order, []any{tag, l.Get("args")})
		}
	}
	step("sleep order", order)

	step("never answered", d.emitAckError("c", "quiet", 300))
	step("no handler", d.emitAckError("c", "nohandler", 300))

	d.emit("c", "requested")
	step("requested without a callback", waitEvents(t, d.p, 1, "recv", map[string]any{"name": "c", "ev": "requested"})[0].Get("args"))
	step("requested's answer", d.emitAck("c", "requested"))
	step("requested with a callback", waitEvents(t, d.p, 2, "recv", map[string]any{"name": "c", "ev": "requested"})[1].Get("args"))

	step("failing", d.emitAck("c", "failing"))
	return seen
}

// emitAckError emits with an ack callback that times out after ms and
// returns the client's error, or the ack's arguments if one came.
func (d *driver) emitAckError(name, ev string, ms int) any {
	d.t.Helper()
	d.tags++
	tag := fmt.Sprintf("%s-%d", ev, d.tags)
	d.p.Send(map[string]any{"op": "emit", "name": name, "ev": ev, "args": []any{}, "ack": true, "tag": tag, "timeout": ms})
	l := waitEvent(d.t, d.p, "ack", map[string]any{"name": name, "tag": tag})
	if e := l.Get("error"); e != nil {
		return map[string]any{"error": e}
	}
	return l.Get("args")
}

// nodeServer starts server.js with a scenario and returns its URL.
func nodeServer(t *testing.T, mode, scenario string) string {
	t.Helper()
	p := nodetest.Start(t, "server.js", nodetest.Options{
		Args:    []string{scenario},
		Env:     []string{"RALLY_TRANSPORT=" + mode},
		Timeout: 2 * time.Minute,
	})
	return waitEvent(t, p, "listening", nil).Text("url")
}

func TestInteropAckCallbacks(t *testing.T) {
	want := []any{
		map[string]any{"echo two": []any{"a", "b"}},
		map[string]any{"echo none": []any{}},
		map[string]any{"echo binary": []any{map[string]any{"$buffer": "0102"}, "x", map[string]any{"$buffer": "03"}}},
		map[string]any{"sleep order": []any{[]any{"fast", []any{10}}, []any{"slow", []any{400}}}},
		map[string]any{"never answered": map[string]any{"error": "operation has timed out"}},
		map[string]any{"no handler": map[string]any{"error": "operation has timed out"}},
		map[string]any{"requested without a callback": []any{false}},
		map[string]any{"requested's answer": []any{}},
		map[string]any{"requested with a callback": []any{true}},
		map[string]any{"failing": []any{map[string]any{"error": "nope"}}},
	}
	forEachInteropMode(t, func(t *testing.T, mode string) {
		srv := startInterop(t, mode, nil, nil)
		ackHandlers(srv.hub)
		rally := ackTranscript(t, srv.driver(t))
		checkJSON(t, "what the client saw of rally", rally, want)

		checkJSON(t, "what the client saw of rally and of Node", rally, ackTranscript(t, nodeDriver(t, mode, "acks")))
	})
}

// closeTranscript has the server close a client's connection and returns
// how the client took it.
func closeTranscript(t *testing.T, d *driver) []any {
	t.Helper()
	d.openReady("c")
	d.emit("c", "close me")
	l := waitEvent(t, d.p, "disconnect", map[string]any{"name": "c"})
	waitEvents(t, d.p, 2, "connect", map[string]any{"name": "c"}) // it came back by itself
	return []any{l.Get("reason"), l.Get("active")}
}

// A connection closed without DISCONNECT, as Node's socket.conn.close()
// does: the client sees the transport close and reconnects.
func TestInteropCloseConnection(t *testing.T) {
	forEachInteropMode(t, func(t *testing.T, mode string) {
		srv := startInterop(t, mode, nil, nil)
		reasons := make(chan string, 2)
		srv.hub.OnDisconnect(func(s *rally.Socket, reason string) { reasons <- reason })
		srv.hub.On("close me", func(s *rally.Socket) { s.CloseConnection() })
		got := closeTranscript(t, srv.driver(t))
		checkJSON(t, "the client's disconnect", got, []any{"transport close", true})
		if r := recv(t, reasons, "OnDisconnect"); r != rally.ReasonForcedClose {
			t.Errorf("OnDisconnect reason %q, want %q", r, rally.ReasonForcedClose)
		}

		checkJSON(t, "the client's disconnect, rally and Node", got, closeTranscript(t, nodeDriver(t, mode, "closeconn")))
	})
}

// listenersTranscript sends events through packet middleware, catch-all
// listeners and the fallback, and returns what the client got back.
func listenersTranscript(t *testing.T, d *driver) []any {
	t.Helper()
	d.openReady("c")
	return []any{
		d.emitAck("c", "shout", "hi"),         // rewritten by middleware
		d.emitAckError("c", "forbidden", 300), // refused by middleware
		d.emitAck("c", "mystery", 1),          // no handler: the fallback
		d.emitAck("c", "report"),              // what ran, in order
	}
}

func TestInteropListeners(t *testing.T) {
	forEachInteropMode(t, func(t *testing.T, mode string) {
		srv := startInterop(t, mode, nil, nil)
		var mu sync.Mutex
		var log []string
		note := func(s string) { mu.Lock(); log = append(log, s); mu.Unlock() }
		hub := srv.hub
		hub.OnConnect(func(s *rally.Socket) {
			s.Use(func(s *rally.Socket, e *rally.Event) error {
				switch e.Name {
				case "forbidden":
					return errors.New("not allowed")
				case "shout":
					var text string
					if err := e.Decode(&text); err != nil {
						return err
					}
					return e.SetArgs(strings.ToUpper(text))
				}
				return nil
			})
			s.OnAny(func(s *rally.Socket, e *rally.Event) { note("any:" + e.Name) })
			s.PrependAny(func(s *rally.Socket, e *rally.Event) { note("first:" + e.Name) })
		})
		hub.On("shout", func(s *rally.Socket, text string, ack rally.Ack) {
			note("handler:shout")
			ack.Send(text)
		})
		hub.OnUnhandled(func(s *rally.Socket, e *rally.Event, ack rally.Ack) { ack.Send("fallback " + e.Name) })
		hub.On("report", func(s *rally.Socket) []string {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(log)
		})

		got := listenersTranscript(t, srv.driver(t))
		checkJSON(t, "what the client saw of rally", got, []any{
			[]any{"HI"},
			map[string]any{"error": "operation has timed out"},
			[]any{"fallback mystery"},
			[]any{[]any{"first:shout", "any:shout", "handler:shout", "first:forbidden", "any:forbidden",
				"first:mystery", "any:mystery", "first:report", "any:report"}},
		})
		checkJSON(t, "what the client saw of rally and of Node", got, listenersTranscript(t, nodeDriver(t, mode, "listeners")))
		if errs := srv.errors(); !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, "not allowed") }) {
			t.Errorf("the refusal did not reach OnError: %q", errs)
		}
	})
}

// outgoingTranscript has the server emit and broadcast, and returns what
// its outgoing listeners saw.
func outgoingTranscript(t *testing.T, d *driver) []any {
	t.Helper()
	d.openReady("c")
	got := []any{d.emitAck("c", "hello")}
	waitEvent(t, d.p, "recv", map[string]any{"name": "c", "ev": "two"})
	return append(got, d.emitAck("c", "report"))
}

func TestInteropOutgoingListeners(t *testing.T) {
	forEachInteropMode(t, func(t *testing.T, mode string) {
		srv := startInterop(t, mode, nil, nil)
		var mu sync.Mutex
		var log []any
		note := func(v ...any) { mu.Lock(); log = append(log, v); mu.Unlock() }
		hub := srv.hub
		hub.OnConnect(func(s *rally.Socket) {
			s.OnAnyOutgoing(func(s *rally.Socket, e *rally.Event) { note(append([]any{"out:" + e.Name}, e.Values()...)...) })
			s.PrependAnyOutgoing(func(s *rally.Socket, e *rally.Event) { note("first:" + e.Name) })
		})
		hub.On("hello", func(s *rally.Socket) string {
			s.Emit("one", 1)
			hub.Emit("two", 2)
			s.Broadcast().Emit("three", 3)
			return "done"
		})
		hub.On("report", func(s *rally.Socket) []any {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(log)
		})
		got := outgoingTranscript(t, srv.driver(t))
		checkJSON(t, "what rally's outgoing listeners saw", got, []any{
			[]any{"done"},
			[]any{[]any{[]any{"first:one"}, []any{"out:one", 1}, []any{"first:two"}, []any{"out:two", 2}}},
		})
		checkJSON(t, "rally and Node", got, outgoingTranscript(t, nodeDriver(t, mode, "outgoing")))
	})
}

// relayTranscript sends arguments whose key order and numbers a faithful
// relay keeps, and returns the JSON text of what came back.
func relayTranscript(t *testing.T, d *driver) []string {
	t.Helper()
	d.openReady("c")
	var texts []string
	for _, args := range []string{
		`[{"z":1,"a":[{"$buffer":"01"},"x"],"m":{"y":2,"b":3}},{"$buffer":"02"},1.5]`,
		`["plain",{"k2":true,"k1":null,"k0":1e3}]`,
	} {
		d.tags++
		tag := fmt.Sprint("relay-", d.tags)
		// As text, so that the keys keep the order chosen here.
		d.p.Send(map[string]any{"op": "emit", "name": "c", "ev": "relay", "argsJSON": args, "ack": true, "tag": tag})
		l := waitEvent(t, d.p, "ack", map[string]any{"name": "c", "tag": tag})
		var line struct{ Args json.RawMessage }
		if err := json.Unmarshal([]byte(l.Raw), &line); err != nil {
			t.Fatal(err)
		}
		texts = append(texts, string(line.Args))
	}
	return texts
}

// A relay through rally.Raw sends back what came as Node's relay does:
// key order kept (...any would sort it) and binary values in place.
func TestInteropRawRelay(t *testing.T) {
	forEachInteropMode(t, func(t *testing.T, mode string) {
		srv := startInterop(t, mode, nil, nil)
		srv.hub.On("relay", func(s *rally.Socket, ack rally.Ack, args ...rally.Raw) { ack.Send(rally.Args(args)...) })
		got := relayTranscript(t, srv.driver(t))
		want := relayTranscript(t, nodeDriver(t, mode, "relay"))
		if !slices.Equal(got, want) {
			t.Fatalf("relayed by rally:\n%s\nby Node:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		t.Logf("relayed as Node relays: %s", strings.Join(got, " "))
	})
}

// forEachInteropMode runs f as a parallel subtest in each transport mode,
// once Node is known to be there.
func forEachInteropMode(t *testing.T, f func(t *testing.T, mode string)) {
	nodetest.Node(t)
	for _, mode := range interopModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			f(t, mode)
		})
	}
}

// nodeDriver starts server.js with a scenario and returns a driver of the
// official client connected to it.
func nodeDriver(t *testing.T, mode, scenario string) *driver {
	t.Helper()
	return (&interopServer{url: nodeServer(t, mode, scenario), mode: mode}).driver(t)
}
