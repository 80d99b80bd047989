package engineio

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echo sends every message back and records how the session ended.
type echo struct {
	s      *Session
	mu     sync.Mutex
	reason string
	closed chan struct{}
}

func (e *echo) OnMessage(data []byte, binary bool) {
	f := Frame{Data: append([]byte{Message}, data...)}
	if binary {
		f = Frame{Data: data, Binary: true}
	}
	e.s.Send(framesFor(e.s, f)...)
}

// framesFor frames f for s's revision.
func framesFor(s *Session, f Frame) []Frame {
	if s.Protocol() == Protocol3 {
		return EIO3Frames([]Frame{f})
	}
	return []Frame{f}
}

func (e *echo) OnClose(reason string) {
	e.mu.Lock()
	e.reason = reason
	e.mu.Unlock()
	close(e.closed)
}

func (e *echo) wait(t *testing.T) string {
	t.Helper()
	select {
	case <-e.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("session did not close")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reason
}

type testServer struct {
	*httptest.Server
	srv      *Server
	mu       sync.Mutex
	sessions []*echo
}

func newTestServer(t *testing.T, opts Options) *testServer {
	ts := &testServer{}
	opts.NewSession = func(s *Session, _ *http.Request) Handler {
		e := &echo{s: s, closed: make(chan struct{})}
		ts.mu.Lock()
		ts.sessions = append(ts.sessions, e)
		ts.mu.Unlock()
		return e
	}
	ts.srv = NewServer(opts)
	ts.Server = httptest.NewServer(ts.srv)
	t.Cleanup(func() {
		ts.srv.Close(ReasonForcedClose)
		ts.Server.Close()
	})
	return ts
}

func (ts *testServer) session(t *testing.T, i int) *echo {
	t.Helper()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if i >= len(ts.sessions) {
		t.Fatalf("session %d not created", i)
	}
	return ts.sessions[i]
}

func (ts *testServer) do(t *testing.T, method, query, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+"/?"+query, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

type openPacket struct {
	Sid          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"`
	PingTimeout  int      `json:"pingTimeout"`
	MaxPayload   int      `json:"maxPayload"`
}

func parseOpen(t *testing.T, body string) openPacket {
	t.Helper()
	if !strings.HasPrefix(body, "0") {
		t.Fatalf("not an open packet: %q", body)
	}
	var o openPacket
	if err := json.Unmarshal([]byte(body[1:]), &o); err != nil {
		t.Fatalf("open packet %q: %v", body, err)
	}
	return o
}

func (ts *testServer) handshake(t *testing.T) string {
	t.Helper()
	status, body, _ := ts.do(t, "GET", "EIO=4&transport=polling&t=x", "")
	if status != 200 {
		t.Fatalf("handshake: %d %s", status, body)
	}
	return parseOpen(t, body).Sid
}

func TestPollingHandshake(t *testing.T) {
	ts := newTestServer(t, Options{})
	status, body, h := ts.do(t, "GET", "EIO=4&transport=polling&t=abc", "")
	if status != 200 || h.Get("Content-Type") != "text/plain; charset=UTF-8" || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("got %d %q %v", status, body, h)
	}
	o := parseOpen(t, body)
	if len(o.Sid) != 20 || strings.Trim(o.Sid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		t.Errorf("sid %q is not 20 URL-safe characters", o.Sid)
	}
	want := `0{"sid":"` + o.Sid + `","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`
	if body != want {
		t.Errorf("open packet\n got %s\nwant %s", body, want)
	}
}

func TestRequestErrors(t *testing.T) {
	ts := newTestServer(t, Options{AllowRequest: func(r *http.Request) error {
		if r.URL.Query().Get("deny") != "" {
			return errors.New("")
		}
		return nil
	}})
	sid := ts.handshake(t)
	tests := []struct {
		name, method, query string
		status              int
		body                string
	}{
		{"no transport", "GET", "EIO=4", 400, `{"code":0,"message":"Transport unknown"}`},
		{"bad transport", "GET", "EIO=4&transport=carrier-pigeon", 400, `{"code":0,"message":"Transport unknown"}`},
		{"unknown sid", "GET", "EIO=4&transport=polling&sid=nope", 400, `{"code":1,"message":"Session ID unknown"}`},
		{"post handshake", "POST", "EIO=4&transport=polling", 400, `{"code":2,"message":"Bad handshake method"}`},
		{"websocket without upgrade", "GET", "EIO=4&transport=websocket", 400, `{"code":3,"message":"Bad request"}`},
		{"transport mismatch", "GET", "EIO=4&transport=websocket&sid=" + sid, 400, `{"code":3,"message":"Bad request"}`},
		{"forbidden", "GET", "EIO=4&transport=polling&deny=1", 403, `{"code":4,"message":"Forbidden"}`},
		{"EIO 3", "GET", "EIO=3&transport=polling", 400, `{"code":5,"message":"Unsupported protocol version"}`},
		{"no EIO", "GET", "transport=polling", 400, `{"code":5,"message":"Unsupported protocol version"}`},
		{"other method", "PUT", "EIO=4&transport=polling&sid=" + sid, 500, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, h := ts.do(t, tt.method, tt.query, "")
			if status != tt.status || body != tt.body {
				t.Fatalf("got %d %q, want %d %q", status, body, tt.status, tt.body)
			}
			if tt.body != "" && h.Get("Content-Type") != "application/json" {
				t.Fatalf("content type %q", h.Get("Content-Type"))
			}
		})
	}
}

func TestPollingExchange(t *testing.T) {
	ts := newTestServer(t, Options{})
	sid := ts.handshake(t)
	q := "EIO=4&transport=polling&sid=" + sid
	status, body, h := ts.do(t, "POST", q, "4hello\x1ebAQIDBA==\x1e4")
	if status != 200 || body != "ok" || h.Get("Content-Type") != "text/html" {
		t.Fatalf("POST: %d %q %v", status, body, h)
	}
	if _, body, _ = ts.do(t, "GET", q, ""); body != "4hello\x1ebAQIDBA==\x1e4" {
		t.Fatalf("GET: %q", body)
	}
}

func TestPollingBadInput(t *testing.T) {
	t.Run("parse error keeps earlier packets", func(t *testing.T) {
		ts := newTestServer(t, Options{})
		sid := ts.handshake(t)
		q := "EIO=4&transport=polling&sid=" + sid
		if status, _, _ := ts.do(t, "POST", q, "4a\x1e\x1e4b"); status != 400 {
			t.Fatalf("status %d", status)
		}
		if r := ts.session(t, 0).wait(t); r != ReasonParseError {
			t.Fatalf("reason %q", r)
		}
		if status, body, _ := ts.do(t, "GET", q, ""); status != 400 || !strings.Contains(body, `"code":1`) {
			t.Fatalf("after close: %d %q", status, body)
		}
	})
	t.Run("oversized POST keeps the session", func(t *testing.T) {
		ts := newTestServer(t, Options{MaxPayload: 10})
		sid := ts.handshake(t)
		q := "EIO=4&transport=polling&sid=" + sid
		if status, _, _ := ts.do(t, "POST", q, "4"+strings.Repeat("x", 10)); status != 413 {
			t.Fatalf("status %d", status)
		}
		ts.do(t, "POST", q, "4small")
		if _, body, _ := ts.do(t, "GET", q, ""); body != "4small" {
			t.Fatalf("GET after 413: %q", body)
		}
	})
	t.Run("binary content type", func(t *testing.T) {
		ts := newTestServer(t, Options{})
		sid := ts.handshake(t)
		req, _ := http.NewRequest("POST", ts.URL+"/?EIO=4&transport=polling&sid="+sid, strings.NewReader("4x"))
		req.Header.Set("Content-Type", "application/octet-stream")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 400 {
			t.Fatalf("status %d", res.StatusCode)
		}
		if r := ts.session(t, 0).wait(t); r != ReasonTransportError {
			t.Fatalf("reason %q", r)
		}
	})
	t.Run("overlapping GET", func(t *testing.T) {
		ts := newTestServer(t, Options{})
		sid := ts.handshake(t)
		q := "EIO=4&transport=polling&sid=" + sid
		first := make(chan string)
		go func() {
			_, body, _ := ts.do(t, "GET", q, "")
			first <- body
		}()
		waitFor(t, func() bool {
			s := ts.srv.session(sid)
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.poll.get != nil
		})
		if status, body, _ := ts.do(t, "GET", q, ""); status != 400 || body != "" {
			t.Fatalf("second GET: %d %q", status, body)
		}
		if body := <-first; body != "1" {
			t.Fatalf("first GET: %q", body)
		}
		if r := ts.session(t, 0).wait(t); r != ReasonTransportError {
			t.Fatalf("reason %q", r)
		}
	})
	t.Run("client close", func(t *testing.T) {
		ts := newTestServer(t, Options{})
		sid := ts.handshake(t)
		ts.do(t, "POST", "EIO=4&transport=polling&sid="+sid, "1")
		if r := ts.session(t, 0).wait(t); r != ReasonTransportClose {
			t.Fatalf("reason %q", r)
		}
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func dial(t *testing.T, ts *testServer, query string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func read(t *testing.T, c *websocket.Conn) (websocket.MessageType, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	typ, data, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return typ, string(data)
}

func write(t *testing.T, c *websocket.Conn, typ websocket.MessageType, data string) {
	t.Helper()
	if err := c.Write(context.Background(), typ, []byte(data)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func TestWebSocketSession(t *testing.T) {
	ts := newTestServer(t, Options{MaxPayload: 100})
	c := dial(t, ts, "EIO=4&transport=websocket")
	_, open := read(t, c)
	if o := parseOpen(t, open); len(o.Upgrades) != 0 || o.MaxPayload != 100 {
		t.Fatalf("open packet %s", open)
	}
	write(t, c, websocket.MessageText, "4hello")
	if typ, got := read(t, c); typ != websocket.MessageText || got != "4hello" {
		t.Fatalf("echo: %v %q", typ, got)
	}
	write(t, c, websocket.MessageBinary, "\x01\x02")
	if typ, got := read(t, c); typ != websocket.MessageBinary || got != "\x01\x02" {
		t.Fatalf("binary echo: %v %q", typ, got)
	}
	write(t, c, websocket.MessageText, "bAQIDBA==")
	if typ, got := read(t, c); typ != websocket.MessageBinary || got != "\x01\x02\x03\x04" {
		t.Fatalf("base64 echo: %v %q", typ, got)
	}
	write(t, c, websocket.MessageText, "4"+strings.Repeat("x", 100))
	_, _, err := c.Read(context.Background())
	if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("oversized message: %v", err)
	}
	if r := ts.session(t, 0).wait(t); r != ReasonTransportError {
		t.Fatalf("reason %q", r)
	}
}

func TestWebSocketParseError(t *testing.T) {
	for _, msg := range []string{"x", "", "7"} {
		ts := newTestServer(t, Options{})
		c := dial(t, ts, "EIO=4&transport=websocket")
		read(t, c)
		write(t, c, websocket.MessageText, msg)
		if r := ts.session(t, 0).wait(t); r != ReasonParseError {
			t.Fatalf("%q: reason %q", msg, r)
		}
	}
}

func TestHeartbeat(t *testing.T) {
	ts := newTestServer(t, Options{PingInterval: 30 * time.Millisecond, PingTimeout: 50 * time.Millisecond})
	c := dial(t, ts, "EIO=4&transport=websocket")
	read(t, c)
	for i := range 3 {
		if _, got := read(t, c); got != "2" {
			t.Fatalf("ping %d: got %q", i, got)
		}
		write(t, c, websocket.MessageText, "3")
	}
	// Stop answering: the session times out.
	if r := ts.session(t, 0).wait(t); r != ReasonPingTimeout {
		t.Fatalf("reason %q", r)
	}
}

func TestPollingPingTimeout(t *testing.T) {
	ts := newTestServer(t, Options{PingInterval: 20 * time.Millisecond, PingTimeout: 20 * time.Millisecond})
	ts.handshake(t)
	if r := ts.session(t, 0).wait(t); r != ReasonPingTimeout {
		t.Fatalf("reason %q", r)
	}
}

func TestUpgrade(t *testing.T) {
	ts := newTestServer(t, Options{})
	sid := ts.handshake(t)
	q := "EIO=4&transport=polling&sid=" + sid

	poll := make(chan string, 1)
	go func() {
		_, body, _ := ts.do(t, "GET", q, "")
		poll <- body
	}()
	c := dial(t, ts, "EIO=4&transport=websocket&sid="+sid)
	write(t, c, websocket.MessageText, "2probe")
	if _, got := read(t, c); got != "3probe" {
		t.Fatalf("probe answer %q", got)
	}
	select {
	case body := <-poll:
		if body != "6" {
			t.Fatalf("pending poll released with %q", body)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("pending poll not released")
	}
	// Queued before the upgrade completes: must come out on the websocket.
	ts.srv.session(sid).Send(TextFrame(Message, "queued"))
	write(t, c, websocket.MessageText, "5")
	if _, got := read(t, c); got != "4queued" {
		t.Fatalf("after upgrade got %q", got)
	}
	write(t, c, websocket.MessageText, "4ws")
	if _, got := read(t, c); got != "4ws" {
		t.Fatalf("echo on websocket %q", got)
	}
	if status, body, _ := ts.do(t, "GET", q, ""); status != 400 || body != `{"code":3,"message":"Bad request"}` {
		t.Fatalf("poll after upgrade: %d %q", status, body)
	}
	// A second websocket for the same session is accepted, then closed.
	c2 := dial(t, ts, "EIO=4&transport=websocket&sid="+sid)
	if _, _, err := c2.Read(context.Background()); err == nil {
		t.Fatal("second websocket stayed open")
	}
}

func TestGracefulClose(t *testing.T) {
	t.Run("websocket", func(t *testing.T) {
		ts := newTestServer(t, Options{})
		c := dial(t, ts, "EIO=4&transport=websocket")
		read(t, c)
		e := ts.session(t, 0)
		e.s.Send(TextFrame(Message, "last"))
		e.s.Close()
		if _, got := read(t, c); got != "4last" {
			t.Fatalf("got %q", got)
		}
		if _, _, err := c.Read(context.Background()); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
			t.Fatalf("close: %v", err)
		}
		if r := e.wait(t); r != ReasonForcedClose {
			t.Fatalf("reason %q", r)
		}
	})
	t.Run("polling", func(t *testing.T) {
		ts := newTestServer(t, Options{})
		sid := ts.handshake(t)
		e := ts.session(t, 0)
		e.s.Send(TextFrame(Message, "last"))
		e.s.Close()
		// The close packet comes alone, in the next poll.
		q := "EIO=4&transport=polling&sid=" + sid
		if _, body, _ := ts.do(t, "GET", q, ""); body != "4last" {
			t.Fatalf("first poll %q", body)
		}
		if _, body, _ := ts.do(t, "GET", q, ""); body != "1" {
			t.Fatalf("second poll %q", body)
		}
		if r := e.wait(t); r != ReasonForcedClose {
			t.Fatalf("reason %q", r)
		}
	})
}

func TestPayloadCodec(t *testing.T) {
	frames := []Frame{TextFrame(Message, "hello"), {Data: []byte{1, 2, 3, 4}, Binary: true}, pingFrame}
	body := AppendPayload(nil, frames)
	if string(body) != "4hello\x1ebAQIDBA==\x1e2" { // F8
		t.Fatalf("payload %q", body)
	}
	var got []Packet
	if err := DecodePayload(body, func(p Packet) { got = append(got, p) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || string(got[0].Data) != "hello" || !got[1].Binary || string(got[1].Data) != "\x01\x02\x03\x04" || got[2].Type != Ping {
		t.Fatalf("decoded %+v", got)
	}
	for _, bad := range []string{"", "x", "7", "4a\x1e", "bnot base64!"} {
		if err := DecodePayload([]byte(bad), func(Packet) {}); err == nil {
			t.Errorf("DecodePayload(%q) accepted", bad)
		}
	}
}

func TestOriginPolicy(t *testing.T) {
	ts := newTestServer(t, Options{AllowedOrigins: []string{"app.example.com", "https://*.trusted.dev"}, AllowCredentials: true})
	request := func(method, query, origin string, extra map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+"/?"+query, nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		for k, v := range extra {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	handshake := "EIO=4&transport=polling"
	tests := []struct {
		name, method, query, origin string
		status                      int
		acao                        string
	}{
		{"no origin", "GET", handshake, "", 200, ""},
		{"same host", "GET", handshake, ts.URL, 200, ts.URL},
		{"listed host", "GET", handshake, "http://app.example.com", 200, "http://app.example.com"},
		{"listed scheme and host", "GET", handshake, "https://a.trusted.dev", 200, "https://a.trusted.dev"},
		{"wrong scheme", "GET", handshake, "http://a.trusted.dev", 403, ""},
		{"other origin", "GET", handshake, "http://evil.example", 403, ""},
		{"errors carry CORS headers", "GET", "EIO=4&transport=polling&sid=nope", "http://app.example.com", 400, "http://app.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := request(tt.method, tt.query, tt.origin, nil)
			if res.StatusCode != tt.status || res.Header.Get("Access-Control-Allow-Origin") != tt.acao {
				t.Fatalf("got %d ACAO=%q, want %d %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"), tt.status, tt.acao)
			}
			if tt.acao != "" && (res.Header.Get("Access-Control-Allow-Credentials") != "true" || res.Header.Get("Vary") != "Origin") {
				t.Fatalf("headers %v", res.Header)
			}
		})
	}
	t.Run("preflight", func(t *testing.T) {
		res := request("OPTIONS", handshake, "http://app.example.com", map[string]string{
			"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-token"})
		if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Headers") != "x-token" ||
			res.Header.Get("Access-Control-Allow-Methods") != "GET,POST" {
			t.Fatalf("preflight %d %v", res.StatusCode, res.Header)
		}
		if res := request("OPTIONS", handshake, "http://evil.example", map[string]string{"Access-Control-Request-Method": "POST"}); res.StatusCode != 403 {
			t.Fatalf("refused preflight %d", res.StatusCode)
		}
	})
	t.Run("websocket", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		u := "ws" + strings.TrimPrefix(ts.URL, "http") + "/?EIO=4&transport=websocket"
		_, res, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://evil.example"}}})
		if err == nil || res == nil || res.StatusCode != 400 {
			t.Fatalf("cross-origin websocket: %v %v", res, err)
		}
		c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://app.example.com"}}})
		if err != nil {
			t.Fatalf("allowed origin: %v", err)
		}
		c.CloseNow()
	})
}

func TestAnyOrigin(t *testing.T) {
	ts := newTestServer(t, Options{AllowedOrigins: []string{"*"}})
	req, _ := http.NewRequest("GET", ts.URL+"/?EIO=4&transport=polling", nil)
	req.Header.Set("Origin", "http://anywhere.example")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != "http://anywhere.example" ||
		res.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("%d %v", res.StatusCode, res.Header)
	}
}

func TestPollCompression(t *testing.T) {
	ts := newTestServer(t, Options{})
	sid := ts.handshake(t)
	q := "/?EIO=4&transport=polling&sid=" + sid
	big := "4" + strings.Repeat("abc", 1000)
	for _, tt := range []struct {
		name, accept, payload string
		gzipped               bool
	}{
		{"large, gzip accepted", "gzip, deflate", big, true},
		{"large, gzip refused", "gzip;q=0", big, false},
		{"large, no header", "", big, false},
		{"small", "gzip", "4small", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts.session(t, 0).s.Send(TextFrame(Message, tt.payload[1:]))
			req, _ := http.NewRequest("GET", ts.URL+q, nil)
			if tt.accept != "" {
				req.Header.Set("Accept-Encoding", tt.accept)
			}
			// A transport of its own, so Go does not add and strip gzip.
			res, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var body io.Reader = res.Body
			if got := res.Header.Get("Content-Encoding") == "gzip"; got != tt.gzipped {
				t.Fatalf("gzipped = %v, want %v", got, tt.gzipped)
			}
			if tt.gzipped {
				zr, err := gzip.NewReader(res.Body)
				if err != nil {
					t.Fatal(err)
				}
				body = zr
			}
			b, _ := io.ReadAll(body)
			if string(b) != tt.payload {
				t.Fatalf("payload of %d bytes differs", len(b))
			}
		})
	}
}

// A session closed gracefully while a client is upgrading still delivers
// what was queued, on the websocket, then closes it.
func TestCloseDuringUpgrade(t *testing.T) {
	ts := newTestServer(t, Options{})
	sid := ts.handshake(t)
	c := dial(t, ts, "EIO=4&transport=websocket&sid="+sid)
	write(t, c, websocket.MessageText, "2probe")
	if _, got := read(t, c); got != "3probe" {
		t.Fatalf("probe answer %q", got)
	}
	e := ts.session(t, 0)
	e.s.Send(TextFrame(Message, "bye"))
	e.s.Close()
	write(t, c, websocket.MessageText, "5")
	if _, got := read(t, c); got != "4bye" {
		t.Fatalf("got %q", got)
	}
	if _, _, err := c.Read(context.Background()); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("close: %v", err)
	}
	if r := e.wait(t); r != ReasonForcedClose {
		t.Fatalf("reason %q", r)
	}
}

func TestSessionCookie(t *testing.T) {
	ts := newTestServer(t, Options{Cookie: &http.Cookie{Name: "io", Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}})
	_, body, h := ts.do(t, "GET", "EIO=4&transport=polling", "")
	sid := parseOpen(t, body).Sid
	if got, want := h.Get("Set-Cookie"), "io="+sid+"; Path=/; HttpOnly; SameSite=Lax"; got != want {
		t.Fatalf("Set-Cookie %q, want %q", got, want)
	}
	if _, _, h := ts.do(t, "POST", "EIO=4&transport=polling&sid="+sid, "4x"); h.Get("Set-Cookie") != "" {
		t.Fatalf("only the handshake sets the cookie, a POST set %q", h.Get("Set-Cookie"))
	}
}
