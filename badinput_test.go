package rally_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/sockettest"
)

// rawConn is a websocket speaking Engine.IO by hand, to send what no
// well-behaved client would.
type rawConn struct {
	t *testing.T
	c *websocket.Conn
}

func dialRaw(t *testing.T, srv *sockettest.Server) *rawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	r := &rawConn{t: t, c: c}
	if open := r.read(); !strings.HasPrefix(open, `0{"sid":`) {
		t.Fatalf("open packet %q", open)
	}
	return r
}

func (r *rawConn) write(typ websocket.MessageType, data string) {
	r.t.Helper()
	if err := r.c.Write(context.Background(), typ, []byte(data)); err != nil {
		r.t.Fatalf("write %q: %v", data, err)
	}
}

func (r *rawConn) text(data string) { r.t.Helper(); r.write(websocket.MessageText, data) }

func (r *rawConn) read() string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, data, err := r.c.Read(ctx)
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	return string(data)
}

// closed asserts that the server closes the websocket, skipping pings.
func (r *rawConn) closed() error {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, data, err := r.c.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				r.t.Fatal("the server kept the connection open")
			}
			return err
		}
		if string(data) != "2" {
			r.t.Fatalf("got %q, want the connection closed", data)
		}
	}
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		name    string
		connect bool     // join "/" first
		send    []string // text frames; "bin:" prefix for a binary frame
		reason  string   // server-side disconnect reason of the "/" socket
	}{
		{"unknown packet type", true, []string{"4x"}, rally.ReasonForcedClose},
		{"event payload not an array", true, []string{"42{}"}, rally.ReasonForcedClose},
		{"empty event", true, []string{"42[]"}, rally.ReasonForcedClose},
		{"reserved event name", true, []string{`42["disconnect"]`}, rally.ReasonForcedClose},
		{"garbage before payload", true, []string{`42abc["x"]`}, rally.ReasonForcedClose},
		{"truncated JSON", true, []string{`42["x"`}, rally.ReasonForcedClose},
		{"disconnect with payload", true, []string{`41{}`}, rally.ReasonForcedClose},
		{"ack without array", true, []string{`431{}`}, rally.ReasonForcedClose},
		{"too many attachments", true, []string{`4511-["x"]`}, rally.ReasonForcedClose},
		{"zero attachments", true, []string{`450-["x"]`}, rally.ReasonForcedClose},
		{"text while attachments pending", true, []string{`451-["x",{"_placeholder":true,"num":0}]`, `42["y"]`}, rally.ReasonForcedClose},
		{"placeholder out of range", true, []string{`451-["x",{"_placeholder":true,"num":3}]`, "bin:\x01"}, rally.ReasonForcedClose},
		{"binary without header", true, []string{"bin:\x01"}, rally.ReasonForcedClose},
		{"event for a namespace not joined", true, []string{`42/admin,["x"]`}, rally.ReasonForcedServerClose},
		{"second CONNECT", true, []string{"40"}, rally.ReasonForcedServerClose},
		{"CONNECT_ERROR from the client", true, []string{`44{"message":"x"}`}, rally.ReasonForcedServerClose},
		{"unknown engine packet", true, []string{"x"}, rally.ReasonParseError},
		{"empty engine packet", true, []string{""}, rally.ReasonParseError},
		{"ping from the client", true, []string{"2"}, rally.ReasonTransportError},
		{"oversized message", true, []string{"4" + strings.Repeat("x", 2000)}, rally.ReasonTransportError},
		{"event before CONNECT", false, []string{`42["x"]`}, ""},
		{"empty Socket.IO packet", true, []string{"4"}, rally.ReasonForcedClose},
		{"ack without id", true, []string{`43["x"]`}, rally.ReasonForcedClose},
		{"ack id beyond 2^53", true, []string{`4299999999999999999["x"]`}, rally.ReasonForcedClose},
		{"namespace name too long", true, []string{"40/" + strings.Repeat("n", 300) + ","}, rally.ReasonForcedClose},
		{"event name too long", true, []string{`42["` + strings.Repeat("e", 1100) + `"]`}, rally.ReasonForcedClose},
		{"DISCONNECT for a namespace not joined", true, []string{"41/admin,"}, rally.ReasonForcedServerClose},
		{"ACK for a namespace not joined", true, []string{"43/admin,1[]"}, rally.ReasonForcedServerClose},
		{"close packet", true, []string{"1"}, rally.ReasonTransportClose},
		{"noop from the client", true, []string{"6"}, "stays"},
		{"upgrade packet outside an upgrade", true, []string{"5"}, "stays"},
		{"unsolicited pong", true, []string{"3"}, "stays"},
		{"ack with an unknown id", true, []string{"43999[]"}, "stays"},
		{"open packet from the client", true, []string{"0{}"}, "stays"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reasons := make(chan string, 1)
			hub := rally.NewHub(&rally.Options{MaxHTTPBufferSize: 1500, OnError: func(*rally.Socket, error) {}})
			hub.Of("/admin")
			hub.On("ping", func(s *rally.Socket) string { return "pong" })
			hub.OnConnect(func(s *rally.Socket) {
				if s.Handshake().Query.Get("bystander") == "" {
					s.On("x", func(*rally.Socket) {})
				}
			})
			hub.OnDisconnect(func(s *rally.Socket, reason string) {
				if s.Handshake().Query.Get("bystander") == "" {
					reasons <- reason
				}
			})
			srv := sockettest.NewServer(t, hub)
			bystander := srv.Dial(t, "/", &client.Options{Query: map[string][]string{"bystander": {"1"}}})

			raw := dialRaw(t, srv)
			if tt.connect {
				raw.text("40")
				if reply := raw.read(); !strings.HasPrefix(reply, `40{"sid":"`) {
					t.Fatalf("CONNECT reply %q", reply)
				}
			}
			for _, msg := range tt.send {
				if b, ok := strings.CutPrefix(msg, "bin:"); ok {
					raw.write(websocket.MessageBinary, b)
				} else {
					raw.text(msg)
				}
			}
			if tt.reason == "stays" {
				// Ignored: the connection still answers.
				raw.text(`421["ping"]`)
				for {
					got := raw.read()
					if got == "2" {
						continue
					}
					if got != `431["pong"]` {
						t.Fatalf("got %q, want the ping answered", got)
					}
					break
				}
				return
			}
			raw.closed()
			if tt.reason != "" {
				select {
				case got := <-reasons:
					if got != tt.reason {
						t.Fatalf("reason %q, want %q", got, tt.reason)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("no OnDisconnect")
				}
			}

			// Nothing else on the hub is disturbed.
			r, err := bystander.EmitWithAck(ctx5s(t), "ping")
			var pong string
			if err != nil || r.Decode(&pong) != nil || pong != "pong" {
				t.Fatalf("bystander: %q %v", pong, err)
			}
		})
	}
}

func TestOversizedMessageCloses1009(t *testing.T) {
	hub := rally.NewHub(&rally.Options{MaxHTTPBufferSize: 100})
	srv := sockettest.NewServer(t, hub)
	raw := dialRaw(t, srv)
	raw.text("4" + strings.Repeat("x", 100))
	if err := raw.closed(); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("close: %v", err)
	}
}

func TestInvalidNamespaceKeepsTheConnection(t *testing.T) {
	hub := rally.NewHub(nil)
	srv := sockettest.NewServer(t, hub)
	raw := dialRaw(t, srv)
	raw.text("40/random,")
	if got := raw.read(); got != `44/random,{"message":"Invalid namespace"}` {
		t.Fatalf("got %q", got)
	}
	raw.text("40")
	if got := raw.read(); !strings.HasPrefix(got, `40{"sid":"`) {
		t.Fatalf("CONNECT after refusal: %q", got)
	}
}

func TestMiddlewareRefusalKeepsTheConnection(t *testing.T) {
	hub := rally.NewHub(nil)
	hub.Use(func(s *rally.Socket) error {
		if string(s.Handshake().Auth) != `{"ok":true}` {
			return &rally.ConnectError{Message: "Not authorized", Data: map[string]int{"code": 42}}
		}
		return nil
	})
	srv := sockettest.NewServer(t, hub)
	raw := dialRaw(t, srv)
	raw.text(`40{"token":"123"}`)
	if got := raw.read(); got != `44{"message":"Not authorized","data":{"code":42}}` { // F22
		t.Fatalf("got %q", got)
	}
	raw.text(`40{"ok":true}`)
	if got := raw.read(); !strings.HasPrefix(got, `40{"sid":"`) {
		t.Fatalf("retry: %q", got)
	}
}

func TestConnectTimeout(t *testing.T) {
	hub := rally.NewHub(&rally.Options{ConnectTimeout: 50 * time.Millisecond})
	srv := sockettest.NewServer(t, hub)
	raw := dialRaw(t, srv) // never sends CONNECT
	raw.closed()
}

// rawPoll is a long-polling session driven by hand.
type rawPoll struct {
	t   *testing.T
	url string
	sid string
}

func openPoll(t *testing.T, srv *sockettest.Server) *rawPoll {
	t.Helper()
	p := &rawPoll{t: t, url: srv.URL + "/socket.io/"}
	status, body := p.do("GET", "EIO=4&transport=polling", "")
	if status != 200 || !strings.HasPrefix(body, `0{"sid":"`) {
		t.Fatalf("handshake: %d %q", status, body)
	}
	p.sid = body[len(`0{"sid":"`) : len(`0{"sid":"`)+20]
	return p
}

func (p *rawPoll) do(method, query, body string) (int, string) {
	p.t.Helper()
	req, err := http.NewRequest(method, p.url+"?"+query, strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (p *rawPoll) q() string { return "EIO=4&transport=polling&sid=" + p.sid }

func TestPollingBadInput(t *testing.T) {
	unknown := `{"code":1,"message":"Session ID unknown"}`
	tests := []struct {
		name       string
		method     string
		query      func(p *rawPoll) string
		body       string
		status     int
		respBody   string
		keepsAlive bool // the session survives
	}{
		{"unknown sid", "GET", func(*rawPoll) string { return "EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA" }, "", 400, unknown, true},
		{"bad EIO", "GET", func(*rawPoll) string { return "EIO=3&transport=polling" }, "", 400, `{"code":5,"message":"Unsupported protocol version"}`, true},
		{"unknown transport", "GET", func(p *rawPoll) string { return "EIO=4&transport=flash&sid=" + p.sid }, "", 400, `{"code":0,"message":"Transport unknown"}`, true},
		{"handshake by POST", "POST", func(*rawPoll) string { return "EIO=4&transport=polling" }, "40", 400, `{"code":2,"message":"Bad handshake method"}`, true},
		{"transport mismatch", "GET", func(p *rawPoll) string { return "EIO=4&transport=websocket&sid=" + p.sid }, "", 400, `{"code":3,"message":"Bad request"}`, true},
		{"wrong method", "PUT", (*rawPoll).q, "", 500, "", true},
		{"oversized POST", "POST", (*rawPoll).q, "4" + strings.Repeat("x", 1000), 413, "", true},
		{"empty body", "POST", (*rawPoll).q, "", 400, "", false},
		{"empty segment", "POST", (*rawPoll).q, `42["x"]` + "\x1e\x1e" + `42["x"]`, 400, "", false},
		{"bad base64", "POST", (*rawPoll).q, "b!!!", 400, "", false},
		{"bad packet among good ones", "POST", (*rawPoll).q, `42["x"]` + "\x1ex\x1e" + `42["x"]`, 400, "", false},
		{"bad Socket.IO packet", "POST", (*rawPoll).q, "42{}", 200, "ok", false},
		{"trailing separator", "POST", (*rawPoll).q, `42["x"]` + "\x1e", 400, "", false},
		{"close packet", "POST", (*rawPoll).q, "1", 200, "ok", false},
		{"ping from the client", "POST", (*rawPoll).q, "2", 200, "ok", false},
		{"handshake with a sid-less POST", "POST", func(*rawPoll) string { return "EIO=4&transport=polling" }, "", 400, `{"code":2,"message":"Bad handshake method"}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hub := rally.NewHub(&rally.Options{MaxHTTPBufferSize: 1000, OnError: func(*rally.Socket, error) {}})
			hub.On("ping", func(s *rally.Socket) string { return "pong" })
			hub.On("x", func(s *rally.Socket) {})
			srv := sockettest.NewServer(t, hub)
			bystander := srv.Dial(t, "/", &client.Options{Transports: []string{client.TransportPolling}})

			p := openPoll(t, srv)
			if status, body := p.do("POST", p.q(), "40"); status != 200 || body != "ok" {
				t.Fatalf("CONNECT: %d %q", status, body)
			}
			if _, body := p.do("GET", p.q(), ""); !strings.HasPrefix(body, `40{"sid":"`) {
				t.Fatalf("CONNECT reply %q", body)
			}
			status, body := p.do(tt.method, tt.query(p), tt.body)
			if status != tt.status || body != tt.respBody {
				t.Fatalf("got %d %q, want %d %q", status, body, tt.status, tt.respBody)
			}
			// The session is kept, or gone for good.
			status, body = p.do("POST", p.q(), `42["x"]`)
			if tt.keepsAlive && (status != 200 || body != "ok") {
				t.Fatalf("session lost: %d %q", status, body)
			}
			if !tt.keepsAlive && (status != 400 || body != unknown) {
				t.Fatalf("session still open: %d %q", status, body)
			}
			r, err := bystander.EmitWithAck(ctx5s(t), "ping")
			var pong string
			if err != nil || r.Decode(&pong) != nil || pong != "pong" {
				t.Fatalf("bystander: %q %v", pong, err)
			}
		})
	}
}

func TestUpgradeOfClosedOrUpgradedSession(t *testing.T) {
	hub := rally.NewHub(nil)
	srv := sockettest.NewServer(t, hub)
	c := srv.Dial(t, "/", nil)
	deadline := time.Now().Add(5 * time.Second)
	for c.Transport() != client.TransportWebSocket && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// The client's engine session id is not exposed; read it from the hub
	// through a raw session instead: open one, upgrade it, then try again.
	p := openPoll(t, srv)
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket.io/?" + "EIO=4&transport=websocket&sid=" + p.sid
	ctx := ctx5s(t)
	ws, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.Write(ctx, websocket.MessageText, []byte("2probe"))
	if _, got, err := ws.Read(ctx); err != nil || string(got) != "3probe" {
		t.Fatalf("probe: %q %v", got, err)
	}
	ws.Write(ctx, websocket.MessageText, []byte("5"))
	time.Sleep(50 * time.Millisecond)
	// Already upgraded: a second websocket is accepted, then closed at once.
	ws2, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ws2.Read(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("second websocket: %v", err)
	}
	// Polling on an upgraded session is a bad request.
	if status, body := p.do("GET", p.q(), ""); status != 400 || body != `{"code":3,"message":"Bad request"}` {
		t.Fatalf("poll after upgrade: %d %q", status, body)
	}
	// A closed session is unknown.
	ws.Close(websocket.StatusNormalClosure, "")
	deadline = time.Now().Add(5 * time.Second)
	for {
		_, _, err := websocket.Dial(ctx, wsURL, nil)
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("upgrade of a closed session accepted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !c.Connected() {
		t.Fatal("the other client was disconnected")
	}
}

func TestPollingBadInputOverlappingAndBinary(t *testing.T) {
	hub := rally.NewHub(nil)
	hub.On("ping", func(s *rally.Socket) string { return "pong" })
	srv := sockettest.NewServer(t, hub)
	bystander := srv.Dial(t, "/", &client.Options{Transports: []string{client.TransportPolling}})
	unknown := `{"code":1,"message":"Session ID unknown"}`

	t.Run("GET while another is pending", func(t *testing.T) {
		p := openPoll(t, srv)
		first := make(chan string, 1)
		go func() {
			_, body := p.do("GET", p.q(), "")
			first <- body
		}()
		time.Sleep(50 * time.Millisecond) // let the first GET wait
		if status, body := p.do("GET", p.q(), ""); status != 400 || body != "" {
			t.Fatalf("second GET: %d %q", status, body)
		}
		if body := <-first; body != "1" {
			t.Fatalf("first GET answered %q, want the close packet", body)
		}
		if status, body := p.do("GET", p.q(), ""); status != 400 || body != unknown {
			t.Fatalf("after: %d %q", status, body)
		}
	})
	t.Run("binary POST body", func(t *testing.T) {
		p := openPoll(t, srv)
		req, _ := http.NewRequest("POST", p.url+"?"+p.q(), strings.NewReader("40"))
		req.Header.Set("Content-Type", "application/octet-stream")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 400 {
			t.Fatalf("status %d", res.StatusCode)
		}
		if status, body := p.do("GET", p.q(), ""); status != 400 || body != unknown {
			t.Fatalf("after: %d %q", status, body)
		}
	})
	r, err := bystander.EmitWithAck(ctx5s(t), "ping")
	var pong string
	if err != nil || r.Decode(&pong) != nil || pong != "pong" {
		t.Fatalf("bystander: %q %v", pong, err)
	}
}
