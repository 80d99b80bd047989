package rally_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/internal/nodetest"
	"github.com/rallyhq/rally/sockettest"
)

// TestInteropHooks runs the official socket.io-client (testdata/interop/
// hooks.js) against a hub with every engine hook set:
//
//   - GenerateID's id is the client's engine id (socket.io.engine.id), and
//     its socket id is another, random one: in Node too the hook changes
//     the engine id only (socket.io's Socket draws its own id).
//   - The cookie InitialHeaders sets on the handshake reaches the client:
//     on polling its cookie jar sends it back with every later request,
//     the websocket of an upgrade included; on websocket the 101 carries
//     it, InitialHeaders' header before Headers'.
//   - Headers runs for each of those requests.
//   - A handshake GenerateID refuses ends in the client's connect_error,
//     and OnConnectionError gets it with code 3.
func TestInteropHooks(t *testing.T) {
	nodetest.Node(t)
	for _, mode := range interopModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			testInteropHooks(t, mode)
		})
	}
}

func testInteropHooks(t *testing.T, mode string) {
	var n atomic.Int32
	var mu sync.Mutex
	var served []string // "<hook> <method> <transport>[ sid][ cookie]"
	note := func(hook string, r *http.Request) {
		q := r.URL.Query()
		s := hook + " " + r.Method + " " + q.Get("transport")
		if q.Get("sid") != "" {
			s += " sid"
		}
		if c, err := r.Cookie("uid"); err == nil && c.Value == "1234" {
			s += " cookie"
		}
		mu.Lock()
		served = append(served, s)
		mu.Unlock()
	}
	errs := make(chan string, 4)
	// deflate is websocket only, with permessage-deflate.
	ws := mode == "websocket" || mode == "deflate"
	hub := rally.NewHub(&rally.Options{
		Compression: mode == "deflate",
		GenerateID: func(r *http.Request) string {
			if r.URL.Query().Get("refuse") != "" {
				return ""
			}
			return fmt.Sprintf("node-%d", n.Add(1))
		},
		InitialHeaders: func(h http.Header, r *http.Request) {
			note("initial", r)
			h.Add("X-Hook", "initial")
			h.Add("Set-Cookie", "uid=1234; Path=/")
		},
		Headers: func(h http.Header, r *http.Request) {
			note("headers", r)
			h.Add("X-Hook", "headers")
		},
		OnConnectionError: func(r *http.Request, code int, message string) {
			errs <- fmt.Sprintf("%d %s refuse=%s", code, message, r.URL.Query().Get("refuse"))
		},
		OnError: func(s *rally.Socket, err error) {}, // the refusal's report
	})
	hub.On("echo", func(s *rally.Socket, v string) string { return v })
	srv := sockettest.NewServer(t, hub)
	p := nodetest.Start(t, "hooks.js", nodetest.Options{
		Env:     []string{"RALLY_URL=" + srv.URL, "RALLY_TRANSPORT=" + mode},
		Timeout: time.Minute,
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("hooks.js stderr:\n%s", p.Stderr())
		}
	})

	connected := p.WaitEvent(waitTimeout, "connect", map[string]any{"name": "hooks"})
	if sid, id := connected.Text("sid"), connected.Text("id"); sid != "node-1" || id == sid || len(id) != 20 {
		t.Errorf("client: engine id %q, socket id %q; want node-1 and 20 random characters", sid, id)
	}
	if mode == "default" {
		p.WaitEvent(waitTimeout, "upgrade", map[string]any{"transport": "websocket"})
	}
	p.Send(map[string]any{"op": "echo", "value": "hi"})
	p.WaitEvent(waitTimeout, "echoed", map[string]any{"value": "hi"})
	if ws {
		// ws joins a repeated header's values with ", ".
		p.WaitEvent(waitTimeout, "ws-headers", map[string]any{"hook": "initial, headers", "cookie": []any{"uid=1234; Path=/"}})
	}

	mu.Lock()
	got := slices.Clone(served)
	mu.Unlock()
	first := "GET polling"
	if ws {
		first = "GET websocket"
	}
	if len(got) < 2 || got[0] != "initial "+first || got[1] != "headers "+first {
		t.Fatalf("the hooks ran for %q; want the handshake's InitialHeaders, then its Headers", got)
	}
	later := got[2:]
	switch mode {
	case "polling", "default":
		// Every request after the handshake carried the cookie.
		if len(later) == 0 {
			t.Errorf("no request after the handshake: %q", got)
		}
		for _, s := range later {
			if !strings.HasPrefix(s, "headers ") || !strings.HasSuffix(s, " sid cookie") {
				t.Errorf("after the handshake the hooks ran for %q, want Headers with the session's sid and the cookie", s)
			}
		}
		if mode == "default" && !slices.Contains(later, "headers GET websocket sid cookie") {
			t.Errorf("no upgrade among %q", later)
		}
	case "websocket", "deflate":
		if len(later) != 0 {
			t.Errorf("on websocket the hooks ran for %q after the handshake", later)
		}
	}

	p.Send(map[string]any{"op": "refused"})
	p.WaitEvent(waitTimeout, "connect_error", map[string]any{"name": "refused"})
	if e := recv(t, errs, "OnConnectionError"); e != "3 Bad request refuse=1" {
		t.Errorf("OnConnectionError got %q, want code 3 for the refused handshake", e)
	}
}
