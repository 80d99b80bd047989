package rally_test

// The engine hooks of Options (GenerateID, InitialHeaders, Headers,
// OnConnectionError) on a real Hub behind httptest servers, with the Go
// client and raw requests. internal/engineio/hooks_test.go holds the
// engine's own tests and, in its opening comment, what the official
// server does for each hook; hooks_interop_test.go runs the official
// client.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/sockettest"
)

// hookExchange is one request a client made and what its response said of
// the hooks.
type hookExchange struct {
	kind   string   // "GET polling", "POST polling sid", "GET websocket sid"…
	status int      // the response's
	hooks  []string // its X-Hook values
	sid    string   // the request's sid parameter
}

// hookRecorder is an http.RoundTripper that records the exchanges it
// carries, websocket handshakes included.
type hookRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	log  []hookExchange
}

func (h *hookRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := h.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	q := req.URL.Query()
	kind := req.Method + " " + q.Get("transport")
	if q.Get("sid") != "" {
		kind += " sid"
	}
	h.mu.Lock()
	h.log = append(h.log, hookExchange{kind, res.StatusCode, res.Header.Values("X-Hook"), q.Get("sid")})
	h.mu.Unlock()
	return res, nil
}

func (h *hookRecorder) exchanges() []hookExchange {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.log)
}

// hookClient returns client options whose requests h records.
func hookClient(t *testing.T, h *hookRecorder, transports ...string) *client.Options {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	h.next = tr
	return &client.Options{Transports: transports, HTTPClient: &http.Client{Transport: h}}
}

// TestHeaderHooksOnTheWire: with the Go client on each transport, the
// handshake's response gets InitialHeaders then Headers, every other
// response Headers alone, the 101 of an upgrade included; the hooks see
// the request each response answers.
func TestHeaderHooksOnTheWire(t *testing.T) {
	for _, tt := range []struct {
		name       string
		transports []string
		// first is the handshake's kind; then come the others'.
		first string
	}{
		{"polling", []string{client.TransportPolling}, "GET polling"},
		{"websocket", []string{client.TransportWebSocket}, "GET websocket"},
		{"upgrade", []string{client.TransportPolling, client.TransportWebSocket}, "GET polling"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var served []string // what the hooks saw, in order
			note := func(hook string, r *http.Request) {
				q := r.URL.Query()
				kind := r.Method + " " + q.Get("transport")
				if q.Get("sid") != "" {
					kind += " sid"
				}
				mu.Lock()
				served = append(served, hook+" "+kind)
				mu.Unlock()
			}
			hub := rally.NewHub(&rally.Options{
				InitialHeaders: func(h http.Header, r *http.Request) {
					note("initial", r)
					h.Add("X-Hook", "initial")
				},
				Headers: func(h http.Header, r *http.Request) {
					note("headers", r)
					h.Add("X-Hook", "headers")
				},
			})
			hub.On("echo", func(s *rally.Socket, v string) string { return v })
			srv := sockettest.NewServer(t, hub)
			rec := &hookRecorder{}
			c := srv.Dial(t, "/", hookClient(t, rec, tt.transports...))
			if len(tt.transports) == 2 {
				waitUntil(t, "the upgrade", func() bool { return c.Transport() == client.TransportWebSocket })
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if r, err := c.EmitWithAck(ctx, "echo", "hi"); err != nil || r.Len() != 1 || string(r.Raw(0)) != `"hi"` {
				t.Fatalf("echo: %s, %v", r, err)
			}
			c.Close()

			exchanges := rec.exchanges()
			if len(exchanges) == 0 || exchanges[0].kind != tt.first {
				t.Fatalf("exchanges %+v, want the handshake %q first", exchanges, tt.first)
			}
			var wantServed []string
			kinds := map[string]bool{}
			for i, e := range exchanges {
				want := []string{"headers"}
				if i == 0 {
					want = []string{"initial", "headers"}
					wantServed = append(wantServed, "initial "+e.kind)
				}
				if e.status != 200 && e.status != 101 {
					continue // none here, but errors go without hooks
				}
				if !slices.Equal(e.hooks, want) {
					t.Errorf("%s answered %d with X-Hook %q, want %q", e.kind, e.status, e.hooks, want)
				}
				wantServed = append(wantServed, "headers "+e.kind)
				kinds[e.kind] = true
			}
			if len(tt.transports) == 2 && !kinds["GET websocket sid"] {
				t.Errorf("no upgrade among %+v", exchanges)
			}
			if tt.name == "polling" && !kinds["POST polling sid"] {
				t.Errorf("no POST among %+v", exchanges)
			}
			// The handshake's hooks ran first, in that order. The rest ran
			// as polls and POSTs were answered, which may be in another
			// order than the client's transport saw them; and a poll
			// pending when the client closed, or the POST of its
			// goodbye, may be answered after the exchanges were taken:
			// the hooks may have run for them too.
			mu.Lock()
			got := slices.Clone(served)
			mu.Unlock()
			if len(got) < len(wantServed) || !slices.Equal(got[:2], wantServed[:2]) {
				t.Fatalf("the hooks ran for %q, want %q", got, wantServed)
			}
			rest, wantRest := slices.Sorted(slices.Values(got[2:])), slices.Sorted(slices.Values(wantServed[2:]))
			for _, w := range wantRest {
				i := slices.Index(rest, w)
				if i < 0 {
					t.Errorf("the hooks ran for %q, want %q (in any order after the handshake)", got, wantServed)
					break
				}
				rest = slices.Delete(rest, i, i+1)
			}
			for _, extra := range rest {
				if extra != "headers GET polling sid" && extra != "headers POST polling sid" {
					t.Errorf("the hooks ran for %q too", extra)
				}
			}
		})
	}
}

// TestOnConnectionErrorCodes: every engine error the hub answers with
// reaches OnConnectionError with the request, the code and the code's
// message, before the response is written.
func TestOnConnectionErrorCodes(t *testing.T) {
	type call struct {
		url     string
		code    int
		message string
	}
	calls := make(chan call, 10)
	opts := &rally.Options{
		AllowRequest: func(r *http.Request) error {
			if r.Header.Get("X-Deny") != "" {
				return errors.New("denied by AllowRequest")
			}
			return nil
		},
		OnConnectionError: func(r *http.Request, code int, message string) {
			calls <- call{r.URL.RequestURI(), code, message}
		},
	}
	hub := rally.NewHub(opts)
	srv := sockettest.NewServer(t, hub)
	sid := hookHandshake(t, srv.URL)

	for _, tt := range []struct {
		name, method, target string
		header               http.Header
		status               int
		body                 string
		code                 int
		message              string
	}{
		{"unknown transport", "GET", "/socket.io/?EIO=4&transport=flying", nil,
			400, `{"code":0,"message":"Transport unknown"}`, 0, "Transport unknown"},
		{"unknown sid", "GET", "/socket.io/?EIO=4&transport=polling&sid=gone", nil,
			400, `{"code":1,"message":"Session ID unknown"}`, 1, "Session ID unknown"},
		{"bad handshake method", "PUT", "/socket.io/?EIO=4&transport=polling", nil,
			400, `{"code":2,"message":"Bad handshake method"}`, 2, "Bad handshake method"},
		{"bad request", "GET", "/socket.io/?EIO=4&transport=websocket&sid=" + sid, nil,
			400, `{"code":3,"message":"Bad request"}`, 3, "Bad request"},
		{"forbidden", "GET", "/socket.io/?EIO=4&transport=polling", http.Header{"X-Deny": {"1"}},
			403, `{"code":4,"message":"denied by AllowRequest"}`, 4, "Forbidden"},
		{"unsupported protocol version", "GET", "/socket.io/?EIO=3&transport=polling", nil,
			400, `{"code":5,"message":"Unsupported protocol version"}`, 5, "Unsupported protocol version"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.target, nil)
			for k, v := range tt.header {
				req.Header[k] = v
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.status || string(body) != tt.body {
				t.Errorf("got %d %s, want %d %s", res.StatusCode, body, tt.status, tt.body)
			}
			select {
			case c := <-calls:
				if want := (call{tt.target, tt.code, tt.message}); c != want {
					t.Errorf("OnConnectionError got %+v, want %+v", c, want)
				}
			default:
				t.Errorf("OnConnectionError was not called before the response")
			}
		})
	}

	// Shutdown refuses handshakes: Bad request, on both transports.
	hub.Close()
	res, body := hookGet(t, srv.URL+"/socket.io/?EIO=4&transport=polling")
	if res.StatusCode != 400 || body != `{"code":3,"message":"Bad request"}` {
		t.Errorf("handshake after Close: %d %s", res.StatusCode, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/socket.io/?EIO=4&transport=websocket", nil); err == nil || res == nil || res.StatusCode != 400 {
		t.Errorf("websocket handshake after Close: %v, %v; want 400, not upgraded", res, err)
	}
	for _, target := range []string{"/socket.io/?EIO=4&transport=polling", "/socket.io/?EIO=4&transport=websocket"} {
		select {
		case c := <-calls:
			if want := (call{target, 3, "Bad request"}); c != want {
				t.Errorf("after Close, OnConnectionError got %+v, want %+v", c, want)
			}
		default:
			t.Errorf("after Close, no OnConnectionError call for %s", target)
		}
	}
}

// hookHandshake opens a polling session by hand and returns its sid.
func hookHandshake(t *testing.T, base string) string {
	t.Helper()
	res, body := hookGet(t, base+"/socket.io/?EIO=4&transport=polling")
	var open struct{ SID string }
	if res.StatusCode != 200 || json.Unmarshal([]byte(strings.TrimPrefix(body, "0")), &open) != nil {
		t.Fatalf("handshake: %d %q", res.StatusCode, body)
	}
	return open.SID
}

func hookGet(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

// TestGenerateIDIsTheEngineID: the hook's id is the sid the client's
// requests carry, on both transports; socket ids stay random and
// separate, as in Node (socket.io's Socket gets base64id.generateId(),
// "don't reuse the Engine.IO id because it's sensitive information").
func TestGenerateIDIsTheEngineID(t *testing.T) {
	var n atomic.Int32
	var seen []*http.Request
	var mu sync.Mutex
	hub := rally.NewHub(&rally.Options{GenerateID: func(r *http.Request) string {
		mu.Lock()
		seen = append(seen, r)
		mu.Unlock()
		return fmt.Sprintf("engine-%d", n.Add(1))
	}})
	ids := make(chan string, 2)
	hub.OnConnect(func(s *rally.Socket) { ids <- s.ID() })
	srv := sockettest.NewServer(t, hub)

	for i, transports := range [][]string{
		{client.TransportPolling, client.TransportWebSocket}, // polling, then the upgrade
		{client.TransportWebSocket},
	} {
		rec := &hookRecorder{}
		c := srv.Dial(t, "/", hookClient(t, rec, transports...))
		if len(transports) == 2 {
			waitUntil(t, "the upgrade", func() bool { return c.Transport() == client.TransportWebSocket })
		}
		want := fmt.Sprintf("engine-%d", i+1)
		socketID := recv(t, ids, "the connection")
		if socketID == want || c.ID() != socketID || len(socketID) != 20 {
			t.Errorf("socket id %q (client: %q): want 20 random characters, not the engine id %q", socketID, c.ID(), want)
		}
		exchanges := rec.exchanges()
		if len(transports) == 1 {
			// The open packet came on the websocket: check that it
			// was our id by polling with it, which the session (on
			// websocket) refuses as a transport mismatch, not as an
			// unknown sid.
			res, body := hookGet(t, srv.URL+"/socket.io/?EIO=4&transport=polling&sid="+want)
			if res.StatusCode != 400 || body != `{"code":3,"message":"Bad request"}` {
				t.Errorf("polling the session %s: %d %s, want the transport mismatch", want, res.StatusCode, body)
			}
		} else {
			for _, e := range exchanges[1:] {
				if e.sid != want {
					t.Errorf("%s named sid %q, want %q", e.kind, e.sid, want)
				}
			}
		}
		c.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0].URL.Query().Get("transport") != "polling" || seen[1].URL.Query().Get("transport") != "websocket" {
		t.Errorf("GenerateID got %d requests, want the 2 handshakes", len(seen))
	}
}

// TestGenerateIDRefusals: an empty id or one in use refuses the handshake
// (400, code 3); the client is told, the cause goes to OnError or the
// default log without the id, and the session that has the id is left
// alone.
func TestGenerateIDRefusals(t *testing.T) {
	t.Run("OnError", func(t *testing.T) {
		var next atomic.Value
		next.Store("taken")
		errs := make(chan error, 4)
		codes := make(chan int, 4)
		hub := rally.NewHub(&rally.Options{
			GenerateID: func(*http.Request) string { return next.Load().(string) },
			OnError: func(s *rally.Socket, err error) {
				if s != nil {
					t.Errorf("a refused handshake's error came with socket %s", s.ID())
				}
				errs <- err
			},
			OnConnectionError: func(r *http.Request, code int, message string) { codes <- code },
		})
		hub.On("echo", func(s *rally.Socket, v string) string { return v })
		srv := sockettest.NewServer(t, hub)
		first := srv.Dial(t, "/", &client.Options{Transports: []string{client.TransportWebSocket}})

		for _, tt := range []struct {
			id, why string
		}{
			{"taken", "the id of an open session"},
			{"", "an empty id"},
		} {
			next.Store(tt.id)
			for _, transport := range []string{client.TransportPolling, client.TransportWebSocket} {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := client.Dial(ctx, srv.URL, &client.Options{Transports: []string{transport}})
				cancel()
				if err == nil {
					t.Fatalf("%s on %s: connected", tt.why, transport)
				}
				e := recv(t, errs, "the report of the refusal")
				if !strings.Contains(e.Error(), tt.why) || (tt.id != "" && strings.Contains(e.Error(), tt.id)) {
					t.Errorf("%s on %s reported %q", tt.why, transport, e)
				}
				if code := recv(t, codes, "OnConnectionError"); code != 3 {
					t.Errorf("%s on %s: code %d, want 3", tt.why, transport, code)
				}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if r, err := first.EmitWithAck(ctx, "echo", "still here"); err != nil || r.Len() != 1 || string(r.Raw(0)) != `"still here"` {
			t.Fatalf("the session with the id: %s, %v", r, err)
		}
	})

	t.Run("default log", func(t *testing.T) {
		var logs logBuffer
		hub := rally.NewHub(&rally.Options{
			GenerateID: func(*http.Request) string { return "fixed-id" },
			Logger:     slog.New(slog.NewTextHandler(&logs, nil)),
		})
		srv := sockettest.NewServer(t, hub)
		hookHandshake(t, srv.URL)
		res, body := hookGet(t, srv.URL+"/socket.io/?EIO=4&transport=polling")
		if res.StatusCode != 400 || body != `{"code":3,"message":"Bad request"}` {
			t.Fatalf("second handshake: %d %s", res.StatusCode, body)
		}
		text := logs.String()
		if !strings.Contains(text, "level=WARN") || !strings.Contains(text, "GenerateID returned the id of an open session") {
			t.Errorf("log %q does not say why", text)
		}
		if strings.Contains(text, "fixed-id") {
			t.Errorf("log %q holds the id", text)
		}
	})
}
