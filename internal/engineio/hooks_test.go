package engineio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The hooks of the official server (engine.io 6.6, build/server.js and
// build/transports/polling.js), and what these tests hold rally to:
//
//   - "headers" is emitted by the polling transport's headers() for every
//     200 it writes: each poll response, the handshake's (the first poll
//     response of the session) included, and each POST's "ok"; and by the
//     ws server's "headers" event for every 101 it writes, upgrades of a
//     polling session included. The server's listener emits
//     "initial_headers" first when the request has no sid, i.e. for the
//     handshake, then "headers": both run on the handshake, in that order.
//     Error responses (abortRequest, abortUpgrade, the transport's own 400,
//     413 and 500) are written without them.
//   - On a polling handshake the listener puts the session cookie into the
//     headers before "initial_headers", so the hook sees (and may change)
//     Set-Cookie.
//   - On a websocket handshake both hooks run on the 101, whose headers
//     they extend; in Node the 101 is written before generateId, in rally
//     after it (see TestGenerateID).
//   - "connection_error" is emitted, before the response is written, for
//     every request refused by verify() (unknown transport, unknown sid,
//     transport mismatch, handshake method, websocket without upgrade,
//     allowRequest) and by handshake() (protocol version, generateId
//     failing), with the code and errorMessages[code]: the standard
//     message, also when allowRequest's message is what the client gets.

// hookLog records calls of the hooks, in order.
type hookLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *hookLog) add(format string, args ...any) {
	l.mu.Lock()
	l.calls = append(l.calls, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

// take returns the calls recorded so far and forgets them.
func (l *hookLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	calls := l.calls
	l.calls = nil
	return calls
}

// kind names a request the way the tests below expect it in the log.
func kind(r *http.Request) string {
	k := r.Method + " " + r.URL.Query().Get("transport")
	if r.URL.Query().Get("sid") != "" {
		k += " sid"
	}
	return k
}

func TestConnectionErrorHook(t *testing.T) {
	log := &hookLog{}
	var ids atomic.Int32
	ts := newTestServer(t, Options{
		AllowedOrigins: []string{"app.example.com"},
		AllowRequest: func(r *http.Request) error {
			if r.URL.Query().Get("deny") != "" {
				return errors.New("no entry")
			}
			return nil
		},
		GenerateID: func(r *http.Request) string {
			if r.URL.Query().Get("id") == "empty" {
				return ""
			}
			return fmt.Sprintf("id-%d", ids.Add(1))
		},
		OnConnectionError: func(r *http.Request, code int, message string) {
			log.add("%s: %d %s", kind(r), code, message)
		},
	})
	sid := ts.handshake(t)
	wsHeaders := map[string]string{"Connection": "Upgrade", "Upgrade": "websocket",
		"Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}

	tests := []struct {
		name, method, query string
		header              map[string]string
		status              int
		body                string // the response's
		hook                string // the call expected, or "" for none
	}{
		{"unknown transport", "GET", "EIO=4&transport=carrier-pigeon", nil,
			400, `{"code":0,"message":"Transport unknown"}`, "GET carrier-pigeon: 0 Transport unknown"},
		{"no transport", "GET", "EIO=4", nil,
			400, `{"code":0,"message":"Transport unknown"}`, "GET : 0 Transport unknown"},
		{"unknown sid", "GET", "EIO=4&transport=polling&sid=nope", nil,
			400, `{"code":1,"message":"Session ID unknown"}`, "GET polling sid: 1 Session ID unknown"},
		// An upgrade is refused as one: 400, the message as text/html.
		{"unknown sid, upgrade", "GET", "EIO=4&transport=websocket&sid=nope", wsHeaders,
			400, "Session ID unknown", "GET websocket sid: 1 Session ID unknown"},
		{"handshake with POST", "POST", "EIO=4&transport=polling", nil,
			400, `{"code":2,"message":"Bad handshake method"}`, "POST polling: 2 Bad handshake method"},
		{"websocket without upgrade", "GET", "EIO=4&transport=websocket", nil,
			400, `{"code":3,"message":"Bad request"}`, "GET websocket: 3 Bad request"},
		{"transport mismatch", "GET", "EIO=4&transport=websocket&sid=" + sid, nil,
			400, `{"code":3,"message":"Bad request"}`, "GET websocket sid: 3 Bad request"},
		// Node: ID_GENERATION_ERROR, when generateId throws.
		{"GenerateID returned nothing", "GET", "EIO=4&transport=polling&id=empty", nil,
			400, `{"code":3,"message":"Bad request"}`, "GET polling: 3 Bad request"},
		{"GenerateID returned nothing, websocket", "GET", "EIO=4&transport=websocket&id=empty", wsHeaders,
			400, "Bad request", "GET websocket: 3 Bad request"},
		// The client gets AllowRequest's text, the hook the code's message,
		// as in Node (err.message is errorMessages[4]).
		{"AllowRequest refuses", "GET", "EIO=4&transport=polling&deny=1", nil,
			403, `{"code":4,"message":"no entry"}`, "GET polling: 4 Forbidden"},
		{"refused origin", "GET", "EIO=4&transport=polling", map[string]string{"Origin": "http://evil.example"},
			403, `{"code":4,"message":"Forbidden"}`, "GET polling: 4 Forbidden"},
		{"refused origin, preflight", "OPTIONS", "EIO=4&transport=polling",
			map[string]string{"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
			403, `{"code":4,"message":"Forbidden"}`, "OPTIONS polling: 4 Forbidden"},
		{"refused origin, session request", "GET", "EIO=4&transport=polling&sid=" + sid, map[string]string{"Origin": "http://evil.example"},
			403, `{"code":4,"message":"Forbidden"}`, "GET polling sid: 4 Forbidden"},
		{"EIO 3", "GET", "EIO=3&transport=polling", nil,
			400, `{"code":5,"message":"Unsupported protocol version"}`, "GET polling: 5 Unsupported protocol version"},
		{"no EIO, websocket", "GET", "transport=websocket", wsHeaders,
			400, "Unsupported protocol version", "GET websocket: 5 Unsupported protocol version"},
		// Not refusals: answered without the hook, as in Node.
		{"handshake", "GET", "EIO=4&transport=polling", nil, 200, "", ""},
		{"other method on a session", "PUT", "EIO=4&transport=polling&sid=" + sid, nil, 500, "", ""},
		{"binary POST", "POST", "EIO=4&transport=polling&sid=" + sid, map[string]string{"Content-Type": "application/octet-stream"}, 400, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, ts.URL+"/?"+tt.query, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.status || (tt.body != "" && string(body) != tt.body) {
				t.Errorf("got %d %q, want %d %q", res.StatusCode, body, tt.status, tt.body)
			}
			// The hook ran before the response was written: it is
			// recorded by now.
			var want []string
			if tt.hook != "" {
				want = []string{tt.hook}
			}
			if got := log.take(); !slices.Equal(got, want) {
				t.Errorf("OnConnectionError calls %q, want %q", got, want)
			}
		})
	}
}

// TestConnectionErrorClosedSession: a poll that reaches a session as it
// ends is refused as an unknown sid, with the hook.
func TestConnectionErrorClosedSession(t *testing.T) {
	log := &hookLog{}
	ts := newTestServer(t, Options{OnConnectionError: func(r *http.Request, code int, message string) {
		log.add("%s: %d %s", kind(r), code, message)
	}})
	sid := ts.handshake(t)
	s := ts.srv.session(sid)
	s.Abort(ReasonForcedClose)
	// The session is no longer listed; serve the poll as if it had been
	// looked up just before.
	req, _ := http.NewRequest("GET", "/?EIO=4&transport=polling&sid="+sid, nil)
	w := &recorder{header: http.Header{}}
	s.servePolling(w, req)
	if w.status != 400 || w.body.String() != `{"code":1,"message":"Session ID unknown"}` {
		t.Fatalf("got %d %q", w.status, w.body.String())
	}
	if got := log.take(); !slices.Equal(got, []string{"GET polling sid: 1 Session ID unknown"}) {
		t.Fatalf("OnConnectionError calls %q", got)
	}
}

// recorder is a minimal http.ResponseWriter.
type recorder struct {
	header http.Header
	status int
	body   strings.Builder
}

func (w *recorder) Header() http.Header { return w.header }
func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *recorder) Write(b []byte) (int, error) {
	w.WriteHeader(200)
	return w.body.Write(b)
}

func TestHeaderHooks(t *testing.T) {
	log := &hookLog{}
	ts := newTestServer(t, Options{
		MaxPayload: 100,
		Cookie:     &http.Cookie{Name: "io", Path: "/"},
		InitialHeaders: func(h http.Header, r *http.Request) {
			// What rally set is there to change: the session cookie
			// (on polling) and the content type.
			log.add("initial %s: cookie %t, type %q", kind(r), h.Get("Set-Cookie") != "", h.Get("Content-Type"))
			h.Add("X-Hooks", "initial")
			h.Add("Set-Cookie", "uid=1234; Path=/")
		},
		Headers: func(h http.Header, r *http.Request) {
			log.add("headers %s: type %q", kind(r), h.Get("Content-Type"))
			h.Add("X-Hooks", "headers")
			h.Set("Cache-Control", "private, no-store") // changes what rally set
		},
	})
	check := func(t *testing.T, h http.Header, hooks ...string) {
		t.Helper()
		if got := h.Values("X-Hooks"); !slices.Equal(got, hooks) {
			t.Errorf("X-Hooks %q, want %q", got, hooks)
		}
	}

	t.Run("polling", func(t *testing.T) {
		status, body, h := ts.do(t, "GET", "EIO=4&transport=polling", "")
		if status != 200 {
			t.Fatalf("handshake: %d %s", status, body)
		}
		sid := parseOpen(t, body).Sid
		check(t, h, "initial", "headers")
		if got, want := h.Values("Set-Cookie"), []string{"io=" + sid + "; Path=/", "uid=1234; Path=/"}; !slices.Equal(got, want) {
			t.Errorf("handshake's Set-Cookie %q, want %q", got, want)
		}
		if got := h.Get("Cache-Control"); got != "private, no-store" {
			t.Errorf("Cache-Control %q: Headers' change is lost", got)
		}
		want := []string{
			`initial GET polling: cookie true, type "text/plain; charset=UTF-8"`,
			`headers GET polling: type "text/plain; charset=UTF-8"`,
		}
		if got := log.take(); !slices.Equal(got, want) {
			t.Errorf("hook calls %q, want %q", got, want)
		}

		q := "EIO=4&transport=polling&sid=" + sid
		_, _, h = ts.do(t, "POST", q, "4hi")
		check(t, h, "headers")
		_, body, h = ts.do(t, "GET", q, "")
		if body != "4hi" {
			t.Fatalf("poll: %q", body)
		}
		check(t, h, "headers")
		if h.Get("Set-Cookie") != "" {
			t.Errorf("a poll set cookies %q", h.Values("Set-Cookie"))
		}
		want = []string{`headers POST polling sid: type "text/html"`, `headers GET polling sid: type "text/plain; charset=UTF-8"`}
		if got := log.take(); !slices.Equal(got, want) {
			t.Errorf("hook calls %q, want %q", got, want)
		}

		// Error responses go out without the hooks.
		for _, req := range []struct{ method, query, body string }{
			{"GET", "EIO=4&transport=polling&sid=nope", ""},
			{"GET", "EIO=3&transport=polling", ""},
			{"PUT", q, ""},
			{"POST", q, "4" + strings.Repeat("x", 200)}, // 413
		} {
			status, _, h := ts.do(t, req.method, req.query, req.body)
			if status == 200 {
				t.Fatalf("%s %s: 200", req.method, req.query)
			}
			check(t, h)
		}
		if got := log.take(); len(got) != 0 {
			t.Errorf("hooks ran for error responses: %q", got)
		}

		// The upgrade's 101 gets Headers only: the request has a sid.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/?"+strings.Replace(q, "polling", "websocket", 1), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		check(t, res.Header, "headers")
		if got := log.take(); !slices.Equal(got, []string{`headers GET websocket sid: type ""`}) {
			t.Errorf("hook calls %q", got)
		}
		write(t, c, websocket.MessageText, "2probe")
		if _, got := read(t, c); got != "3probe" {
			t.Fatalf("probe answer %q", got)
		}
		write(t, c, websocket.MessageText, "5")
		write(t, c, websocket.MessageText, "4ws")
		if _, got := read(t, c); got != "4ws" {
			t.Fatalf("echo on the websocket: %q", got)
		}
	})

	t.Run("websocket", func(t *testing.T) {
		// A client that starts on websocket: its 101 is the handshake's
		// response and gets both, InitialHeaders first. The session
		// cookie is a polling handshake's only, as in Node, whose
		// websocket transport emits no "headers" of its own.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/?EIO=4&transport=websocket", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		check(t, res.Header, "initial", "headers")
		if got := res.Header.Values("Set-Cookie"); !slices.Equal(got, []string{"uid=1234; Path=/"}) {
			t.Errorf("101's Set-Cookie %q, want InitialHeaders' only", got)
		}
		if res.Header.Get("Sec-WebSocket-Accept") == "" || res.Header.Get("Upgrade") != "websocket" {
			t.Errorf("101 without its own headers: %v", res.Header)
		}
		want := []string{`initial GET websocket: cookie false, type ""`, `headers GET websocket: type ""`}
		if got := log.take(); !slices.Equal(got, want) {
			t.Errorf("hook calls %q, want %q", got, want)
		}
		if _, open := read(t, c); parseOpen(t, open).Sid == "" {
			t.Fatalf("open packet %q", open)
		}
	})
}

func TestGenerateID(t *testing.T) {
	var reported []error
	var mu sync.Mutex
	next := make(chan string, 1)
	ts := newTestServer(t, Options{
		GenerateID: func(r *http.Request) string {
			if r.URL.Query().Get("EIO") != "4" || r.URL.Query().Get("sid") != "" {
				t.Errorf("GenerateID called for %s", r.URL)
			}
			return <-next
		},
		ReportError: func(err error) {
			mu.Lock()
			reported = append(reported, err)
			mu.Unlock()
		},
	})
	takeReported := func() []error {
		mu.Lock()
		defer mu.Unlock()
		errs := reported
		reported = nil
		return errs
	}
	wsURL := "ws" + strings.TrimPrefix(ts.URL, "http") + "/?EIO=4&transport=websocket"
	outer := t

	// The id is the session's on both transports, and requests naming it
	// reach the session. Any string goes that is valid UTF-8; the open
	// packet stays valid JSON.
	for _, tt := range []struct{ transport, id string }{
		{"polling", "polling-1"},
		{"polling", `odd "id" \ with, ; and é`},
		{"websocket", "websocket-1"},
		{"websocket", "tab\tand\u2028"},
	} {
		t.Run(tt.transport+" "+tt.id, func(t *testing.T) {
			next <- tt.id
			if tt.transport == "polling" {
				status, body, _ := ts.do(t, "GET", "EIO=4&transport=polling", "")
				if status != 200 || parseOpen(t, body).Sid != tt.id {
					t.Fatalf("handshake: %d %q, want sid %q", status, body, tt.id)
				}
				q := "EIO=4&transport=polling&sid=" + url.QueryEscape(tt.id)
				if status, body, _ := ts.do(t, "POST", q, "4x"); status != 200 || body != "ok" {
					t.Fatalf("POST: %d %q", status, body)
				}
				if _, body, _ := ts.do(t, "GET", q, ""); body != "4x" {
					t.Fatalf("poll: %q", body)
				}
			} else {
				// Kept open past the subtest: the sessions counted below
				// stay as they are.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				c, _, err := websocket.Dial(ctx, wsURL, nil)
				if err != nil {
					t.Fatal(err)
				}
				outer.Cleanup(func() { c.CloseNow() })
				if _, open := read(t, c); parseOpen(t, open).Sid != tt.id {
					t.Fatalf("open packet %q, want sid %q", open, tt.id)
				}
				write(t, c, websocket.MessageText, "4y")
				if _, got := read(t, c); got != "4y" {
					t.Fatalf("echo %q", got)
				}
			}
			if s := ts.srv.session(tt.id); s == nil || s.ID() != tt.id {
				t.Fatalf("no session %q", tt.id)
			}
		})
	}
	if errs := takeReported(); len(errs) != 0 {
		t.Fatalf("reported %v", errs)
	}

	// Refusals: 400 "Bad request" before anything else is sent (no 101
	// on websocket), and ReportError says why. Node refuses only an id
	// that it fails to get (generateId throws); it would take "" or an id
	// in use, and its clients map would then mix the sessions up.
	for _, tt := range []struct {
		name, id string
		err      error
	}{
		{"empty", "", errIDEmpty},
		{"invalid UTF-8", "bad\xff", errIDInvalid},
		{"in use", "polling-1", errIDInUse},
	} {
		for _, transport := range []string{"polling", "websocket"} {
			t.Run(tt.name+" "+transport, func(t *testing.T) {
				before := ts.srv.SessionCount()
				next <- tt.id
				if transport == "polling" {
					status, body, _ := ts.do(t, "GET", "EIO=4&transport=polling", "")
					if status != 400 || body != `{"code":3,"message":"Bad request"}` {
						t.Fatalf("got %d %q", status, body)
					}
				} else {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					_, res, err := websocket.Dial(ctx, wsURL, nil)
					if err == nil || res == nil || res.StatusCode != 400 {
						t.Fatalf("websocket handshake: %v, %v", res, err)
					}
					body, _ := io.ReadAll(res.Body)
					if string(body) != "Bad request" {
						t.Fatalf("body %q", body)
					}
				}
				if errs := takeReported(); len(errs) != 1 || errs[0] != tt.err {
					t.Fatalf("reported %v, want %v", errs, tt.err)
				}
				if n := ts.srv.SessionCount(); n != before {
					t.Fatalf("%d sessions, want %d", n, before)
				}
			})
		}
	}
	// The session whose id was asked for again is undisturbed, and the
	// handler of each refused duplicate was closed.
	q := "EIO=4&transport=polling&sid=polling-1"
	if status, body, _ := ts.do(t, "POST", q, "4still"); status != 200 || body != "ok" {
		t.Fatalf("POST to polling-1: %d %q", status, body)
	}
	if _, body, _ := ts.do(t, "GET", q, ""); body != "4still" {
		t.Fatalf("poll of polling-1: %q", body)
	}
	ts.mu.Lock()
	sessions := slices.Clone(ts.sessions)
	ts.mu.Unlock()
	refused := 0
	for _, e := range sessions {
		if ts.srv.session(e.s.ID()) != e.s {
			if r := e.wait(t); r != ReasonForcedClose {
				t.Errorf("a refused session closed with %q", r)
			}
			refused++
		}
	}
	if refused != 2 {
		t.Errorf("%d handlers of refused sessions, want 2 (the duplicates)", refused)
	}
}

// TestGenerateIDRace: handshakes that get the same id at once open one
// session; the others are refused.
func TestGenerateIDRace(t *testing.T) {
	var refused atomic.Int32
	ts := newTestServer(t, Options{
		GenerateID:  func(*http.Request) string { return "same" },
		ReportError: func(error) { refused.Add(1) },
	})
	const n = 16
	var wg sync.WaitGroup
	var ok atomic.Int32
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				req, _ := http.NewRequest("GET", ts.URL+"/?EIO=4&transport=polling", nil)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode == 200 {
					ok.Add(1)
				}
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/?EIO=4&transport=websocket", nil)
			if err == nil {
				ok.Add(1)
				t.Cleanup(func() { c.CloseNow() })
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || refused.Load() != n-1 || ts.srv.SessionCount() != 1 {
		t.Fatalf("%d handshakes succeeded, %d refused, %d sessions; want 1, %d, 1", ok.Load(), refused.Load(), ts.srv.SessionCount(), n-1)
	}
}

// TestCloseDuringWebSocketHandshake: a websocket handshake's session is
// registered before the 101 is written, and may be closed meanwhile (by a
// shutdown): closed gracefully, its client gets the open packet and a
// normal close; aborted, it gets the 101 and the connection closes.
func TestCloseDuringWebSocketHandshake(t *testing.T) {
	for _, graceful := range []bool{true, false} {
		t.Run(fmt.Sprint("graceful ", graceful), func(t *testing.T) {
			var ts *testServer
			ts = newTestServer(t, Options{Headers: func(h http.Header, r *http.Request) {
				// The hooks run between the registration and the 101.
				ts.mu.Lock()
				e := ts.sessions[len(ts.sessions)-1]
				ts.mu.Unlock()
				if graceful {
					e.s.Close()
				} else {
					e.s.Abort(ReasonForcedClose)
				}
			}})
			c := dial(t, ts, "EIO=4&transport=websocket")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, data, err := c.Read(ctx)
			if graceful {
				if err != nil || parseOpen(t, string(data)).Sid == "" {
					t.Fatalf("got %q, %v; want the open packet", data, err)
				}
				_, _, err = c.Read(ctx)
				if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
					t.Fatalf("after the open packet: %v, want a normal close", err)
				}
			} else if err == nil {
				t.Fatalf("read %q from an aborted session", data)
			}
			if r := ts.session(t, 0).wait(t); r != ReasonForcedClose {
				t.Fatalf("reason %q", r)
			}
			waitFor(t, func() bool { return ts.srv.SessionCount() == 0 })
		})
	}
}
