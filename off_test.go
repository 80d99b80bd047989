package rally_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/sockettest"
)

// eventLog records which listener saw which event, as "event:listener".
type eventLog struct {
	mu   sync.Mutex
	seen []string
}

// listener returns a listener that notes the events it gets, but for the
// fences.
func (l *eventLog) listener(who string) func(*rally.Socket, *rally.Event) {
	return func(s *rally.Socket, e *rally.Event) {
		if e.Name != "fence" {
			l.note(e.Name + ":" + who)
		}
	}
}

func (l *eventLog) note(entry string) {
	l.mu.Lock()
	l.seen = append(l.seen, entry)
	l.mu.Unlock()
}

// expect fails the test unless the log holds want, and empties it.
func (l *eventLog) expect(t *testing.T, want ...string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !slices.Equal(l.seen, want) {
		t.Fatalf("listeners saw %q, want %q", l.seen, want)
	}
	l.seen = nil
}

// listenerServer serves a hub whose "fence" event answers "ok", and
// connects a client to it. It returns the client and its socket on the
// server.
func listenerServer(t *testing.T, hub *rally.Hub) (*client.Socket, *rally.Socket) {
	t.Helper()
	hub.On("fence", func(s *rally.Socket) string { return "ok" })
	srv := sockettest.NewServer(t, hub)
	c := srv.Dial(t, "/", nil)
	s := hub.Of("/").Socket(c.ID())
	if s == nil {
		t.Fatalf("no socket %s on the server", c.ID())
	}
	return c, s
}

// send emits events from the client, then waits for the answer to a
// fence: the server has handled the events, their listeners included,
// when it returns.
func send(t *testing.T, c *client.Socket, events ...string) {
	t.Helper()
	for _, ev := range events {
		if err := c.Emit(ev); err != nil {
			t.Fatalf("emitting %q: %v", ev, err)
		}
	}
	fence(t, c)
}

func fence(t *testing.T, c *client.Socket) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), sockettest.Timeout)
	defer cancel()
	if _, err := c.EmitWithAck(ctx, "fence"); err != nil {
		t.Fatalf("fence: %v", err)
	}
}

// catchAllAPI is one place catch-all listeners are registered: a
// socket, its namespace or the hub, incoming or outgoing.
type catchAllAPI struct {
	on        func(func(*rally.Socket, *rally.Event)) func()
	off       func()
	listeners func() []func(*rally.Socket, *rally.Event)
}

func socketAny(s *rally.Socket) catchAllAPI { return catchAllAPI{s.OnAny, s.OffAny, s.ListenersAny} }

func socketPrependAny(s *rally.Socket) catchAllAPI {
	return catchAllAPI{s.PrependAny, s.OffAny, s.ListenersAny}
}

func namespaceAny(n *rally.Namespace) catchAllAPI {
	return catchAllAPI{n.OnAny, n.OffAny, n.ListenersAny}
}

func hubAny(h *rally.Hub) catchAllAPI { return catchAllAPI{h.OnAny, h.OffAny, h.ListenersAny} }

func socketOutgoing(s *rally.Socket) catchAllAPI {
	return catchAllAPI{s.OnAnyOutgoing, s.OffAnyOutgoing, s.ListenersAnyOutgoing}
}

func socketPrependOutgoing(s *rally.Socket) catchAllAPI {
	return catchAllAPI{s.PrependAnyOutgoing, s.OffAnyOutgoing, s.ListenersAnyOutgoing}
}

func namespaceOutgoing(n *rally.Namespace) catchAllAPI {
	return catchAllAPI{n.OnAnyOutgoing, n.OffAnyOutgoing, n.ListenersAnyOutgoing}
}

func hubOutgoing(h *rally.Hub) catchAllAPI {
	return catchAllAPI{h.OnAnyOutgoing, h.OffAnyOutgoing, h.ListenersAnyOutgoing}
}

// The func OnAny and the like return removes its registration only, once;
// OffAny and the like remove all the listeners of their level, not the
// other level's; a list emptied takes new listeners again.
func TestRemoveCatchAllListeners(t *testing.T) {
	tests := []struct {
		name     string
		outgoing bool
		// api is the level under test, other the level that keeps its
		// listener ("kept") throughout.
		api, other func(*rally.Hub, *rally.Socket) catchAllAPI
		// first and second are what the listeners see of the first and
		// second event: "same" is registered twice, then "other".
		first, second []string
	}{
		{
			name:  "Socket.OnAny",
			api:   func(h *rally.Hub, s *rally.Socket) catchAllAPI { return socketAny(s) },
			other: func(h *rally.Hub, s *rally.Socket) catchAllAPI { return hubAny(h) },
			first: []string{"kept", "same", "same", "other"}, second: []string{"kept", "same", "other"},
		},
		{
			name:  "Socket.PrependAny",
			api:   func(h *rally.Hub, s *rally.Socket) catchAllAPI { return socketPrependAny(s) },
			other: func(h *rally.Hub, s *rally.Socket) catchAllAPI { return hubAny(h) },
			first: []string{"kept", "other", "same", "same"}, second: []string{"kept", "other", "same"},
		},
		{
			name:  "Namespace.OnAny",
			api:   func(h *rally.Hub, s *rally.Socket) catchAllAPI { return namespaceAny(s.Namespace()) },
			other: func(h *rally.Hub, s *rally.Socket) catchAllAPI { return socketAny(s) },
			first: []string{"same", "same", "other", "kept"}, second: []string{"same", "other", "kept"},
		},
		{
			name:  "Hub.OnAny",
			api:   func(h *rally.Hub, s *rally.Socket) catchAllAPI { return hubAny(h) },
			other: func(h *rally.Hub, s *rally.Socket) catchAllAPI { return socketAny(s) },
			first: []string{"same", "same", "other", "kept"}, second: []string{"same", "other", "kept"},
		},
		{
			name: "Socket.OnAnyOutgoing", outgoing: true,
			api:   func(h *rally.Hub, s *rally.Socket) catchAllAPI { return socketOutgoing(s) },
			other: func(h *rally.Hub, s *rally.Socket) catchAllAPI { return hubOutgoing(h) },
			first: []string{"kept", "same", "same", "other"}, second: []string{"kept", "same", "other"},
		},
		{
			name: "Socket.PrependAnyOutgoing", outgoing: true,
			api:   func(h *rally.Hub, s *rally.Socket) catchAllAPI { return socketPrependOutgoing(s) },
			other: func(h *rally.Hub, s *rally.Socket) catchAllAPI { return hubOutgoing(h) },
			first: []string{"kept", "other", "same", "same"}, second: []string{"kept", "other", "same"},
		},
		{
			name: "Namespace.OnAnyOutgoing", outgoing: true,
			api:   func(h *rally.Hub, s *rally.Socket) catchAllAPI { return namespaceOutgoing(s.Namespace()) },
			other: func(h *rally.Hub, s *rally.Socket) catchAllAPI { return socketOutgoing(s) },
			first: []string{"same", "same", "other", "kept"}, second: []string{"same", "other", "kept"},
		},
		{
			name: "Hub.OnAnyOutgoing", outgoing: true,
			api:   func(h *rally.Hub, s *rally.Socket) catchAllAPI { return hubOutgoing(h) },
			other: func(h *rally.Hub, s *rally.Socket) catchAllAPI { return socketOutgoing(s) },
			first: []string{"same", "same", "other", "kept"}, second: []string{"same", "other", "kept"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hub := rally.NewHub(nil)
			c, s := listenerServer(t, hub)
			// event has the server receive an event, or send one, through
			// a broadcast for the outgoing listeners: both paths see
			// whether the socket still has listeners.
			event := func(name string) {
				t.Helper()
				if !tt.outgoing {
					send(t, c, name)
					return
				}
				if err := hub.Emit(name); err != nil {
					t.Fatalf("emitting %q: %v", name, err)
				}
			}
			var log eventLog
			api, other := tt.api(hub, s), tt.other(hub, s)
			other.on(log.listener("kept"))
			same := log.listener("same")
			removeSame := api.on(same)
			api.on(same)
			api.on(log.listener("other"))
			if n := len(api.listeners()); n != 3 {
				t.Fatalf("%d listeners after 3 registrations", n)
			}
			event("one")
			log.expect(t, prefixed("one:", tt.first)...)

			removeSame()
			removeSame() // removes nothing more
			if n := len(api.listeners()); n != 2 {
				t.Fatalf("%d listeners after one of 3 was removed, twice", n)
			}
			event("two")
			log.expect(t, prefixed("two:", tt.second)...)

			api.off()
			if n := len(api.listeners()); n != 0 {
				t.Fatalf("%d listeners after removing all", n)
			}
			event("three")
			log.expect(t, "three:kept")

			api.on(log.listener("again"))
			event("four")
			if tt.first[0] == "kept" {
				log.expect(t, "four:kept", "four:again")
			} else {
				log.expect(t, "four:again", "four:kept")
			}
		})
	}
}

func prefixed(prefix string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + n
	}
	return out
}

// A listener removed while an event is being dispatched still gets that
// event, one added meanwhile does not, as Node calls a copy of its list;
// a listener can remove itself. A listener of any level, incoming or
// outgoing, can.
func TestRemoveListenerDuringDispatch(t *testing.T) {
	tests := []struct {
		name     string
		outgoing bool
		api      func(*rally.Hub, *rally.Socket) catchAllAPI
	}{
		{"Socket.OnAny", false, func(h *rally.Hub, s *rally.Socket) catchAllAPI { return socketAny(s) }},
		{"Namespace.OnAny", false, func(h *rally.Hub, s *rally.Socket) catchAllAPI { return namespaceAny(s.Namespace()) }},
		{"Socket.OnAnyOutgoing", true, func(h *rally.Hub, s *rally.Socket) catchAllAPI { return socketOutgoing(s) }},
		{"Hub.OnAnyOutgoing", true, func(h *rally.Hub, s *rally.Socket) catchAllAPI { return hubOutgoing(h) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hub := rally.NewHub(nil)
			c, s := listenerServer(t, hub)
			api := tt.api(hub, s)
			var log eventLog
			var removeSelf, removeLater func()
			removeSelf = api.on(func(s *rally.Socket, e *rally.Event) {
				log.listener("self")(s, e)
				removeSelf()
			})
			api.on(func(s *rally.Socket, e *rally.Event) {
				log.listener("changer")(s, e)
				if e.Name == "one" {
					removeLater()
					api.on(log.listener("added"))
				}
			})
			removeLater = api.on(log.listener("later"))
			for _, ev := range []string{"one", "two"} {
				if !tt.outgoing {
					send(t, c, ev)
				} else if err := s.Emit(ev); err != nil {
					t.Fatalf("emitting %q: %v", ev, err)
				}
			}
			log.expect(t, "one:self", "one:changer", "one:later", "two:changer", "two:added")
		})
	}
}

// Off removes the socket's handler of an event, and then the namespace's
// takes the event; once that is removed too, the event is unhandled.
func TestOffEvent(t *testing.T) {
	hub := rally.NewHub(nil)
	hub.On("ev", func(s *rally.Socket) string { return "namespace" })
	hub.OnUnhandled(func(s *rally.Socket, e *rally.Event, ack rally.Ack) { ack.Send("unhandled " + e.Name) })
	c, s := listenerServer(t, hub)
	s.On("ev", func(s *rally.Socket) string { return "socket" })
	steps := []struct {
		remove func()
		want   string
	}{
		{func() {}, "socket"},
		{func() { s.Off("ev") }, "namespace"},
		{func() { s.Off("ev") }, "namespace"}, // nothing left to remove on the socket
		{func() { hub.Off("ev") }, "unhandled ev"},
		{func() { hub.Off("ev") }, "unhandled ev"},
	}
	for i, step := range steps {
		step.remove()
		ctx, cancel := context.WithTimeout(context.Background(), sockettest.Timeout)
		reply, err := c.EmitWithAck(ctx, "ev")
		cancel()
		var got string
		if err == nil {
			err = reply.Decode(&got)
		}
		if err != nil || got != step.want {
			t.Fatalf("step %d: ev answered %q, %v; want %q", i, got, err, step.want)
		}
	}
}

// Without OnUnhandled, an event whose handler Off removed is dropped, as
// Node drops an event no listener takes; catch-all listeners still see it.
// RemoveAllListeners removes every handler of the socket, not its
// catch-all listeners.
func TestOffDropsEvent(t *testing.T) {
	hub := rally.NewHub(nil)
	c, s := listenerServer(t, hub)
	var log eventLog
	s.OnAny(log.listener("any"))
	for _, ev := range []string{"a", "b"} {
		s.On(ev, func(s *rally.Socket) { log.note(ev + ":handler") })
	}
	send(t, c, "a", "b")
	log.expect(t, "a:any", "a:handler", "b:any", "b:handler")

	s.Off("a")
	send(t, c, "a", "b")
	log.expect(t, "a:any", "b:any", "b:handler")

	s.On("a", func(s *rally.Socket) { log.note("a:handler") })
	s.RemoveAllListeners()
	send(t, c, "a", "b")
	log.expect(t, "a:any", "b:any")
	if n := len(s.ListenersAny()); n != 1 {
		t.Fatalf("RemoveAllListeners left %d catch-all listeners, want 1", n)
	}
}

// A catch-all listener that removes the handler of the event being
// dispatched keeps it from that event, as Node looks the event's
// listeners up after calling the catch-all ones.
func TestOffFromCatchAll(t *testing.T) {
	hub := rally.NewHub(nil)
	c, s := listenerServer(t, hub)
	var log eventLog
	s.On("ev", func(s *rally.Socket) { log.note("ev:handler") })
	send(t, c, "ev")
	log.expect(t, "ev:handler")
	s.OnAny(func(s *rally.Socket, e *rally.Event) {
		if e.Name == "ev" {
			s.Off("ev")
		}
	})
	send(t, c, "ev")
	log.expect(t)
}

// Listeners are added and removed while events go through them, in and
// out, on every level: the race detector watches.
func TestListenersChangeDuringDispatch(t *testing.T) {
	hub := rally.NewHub(nil)
	hub.On("ev", func(s *rally.Socket) { s.Emit("back") })
	c, s := listenerServer(t, hub)
	apis := []catchAllAPI{
		socketAny(s), socketPrependAny(s), hubAny(hub),
		socketOutgoing(s), socketPrependOutgoing(s), hubOutgoing(hub),
	}
	noop := func(*rally.Socket, *rally.Event) {}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, api := range apis {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				remove := api.on(noop)
				api.listeners()
				remove()
				if i%16 == 0 {
					api.off()
				}
			}
		}()
	}
	for range 200 {
		if err := c.Emit("ev"); err != nil {
			t.Fatalf("emitting: %v", err)
		}
		hub.Emit("broadcast")
	}
	fence(t, c)
	close(done)
	wg.Wait()
}
