package ws

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// waitLimit bounds every wait of these tests for the other side.
const waitLimit = 5 * time.Second

// pollerWatching reports how many connections the poller watches and
// whether it runs. It is set on Linux (poll_linux_test.go) and nil
// elsewhere.
var pollerWatching func() (n int, running bool)

// readModes are the two ways a served connection is read.
var readModes = []struct {
	name     string
	noPoller bool
}{
	{"poller", false},
	{"goroutine", true},
}

// forEachMode runs f as a subtest in each read mode, with opts.NoPoller set
// accordingly.
func forEachMode(t *testing.T, opts AcceptOptions, f func(t *testing.T, opts AcceptOptions)) {
	t.Helper()
	for _, m := range readModes {
		t.Run(m.name, func(t *testing.T) {
			o := opts
			o.NoPoller = m.noPoller
			f(t, o)
		})
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitLimit)
	t.Cleanup(cancel)
	return ctx
}

// waitFor waits until cond holds, failing the test after waitLimit.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// testServer is an HTTP server whose handler accepts WebSocket connections
// and hands them to the test.
type testServer struct {
	*httptest.Server
	conns chan *Conn
	errs  chan error // of Accept
}

func newTestServer(t *testing.T, opts AcceptOptions) *testServer {
	t.Helper()
	ts := &testServer{conns: make(chan *Conn, 512), errs: make(chan error, 64)}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Handler", "set before Accept")
		c, err := Accept(w, r, opts)
		if err != nil {
			select {
			case ts.errs <- err:
			default:
			}
			return
		}
		ts.conns <- c
	}))
	t.Cleanup(func() {
		// Close what the test did not take.
		for {
			select {
			case c := <-ts.conns:
				c.CloseNow()
			default:
				ts.Close()
				return
			}
		}
	})
	return ts
}

// accept returns the next connection accepted by the server; the test's
// end closes it.
func (ts *testServer) accept(t *testing.T) *Conn {
	t.Helper()
	select {
	case c := <-ts.conns:
		t.Cleanup(c.CloseNow)
		return c
	case err := <-ts.errs:
		t.Fatalf("Accept: %v", err)
	case <-time.After(waitLimit):
		t.Fatal("no connection accepted")
	}
	return nil
}

func (ts *testServer) wsURL() string { return "ws" + strings.TrimPrefix(ts.URL, "http") }

// dial opens a client connection with coder/websocket.
func (ts *testServer) dial(ctx context.Context, opts *websocket.DialOptions) (*websocket.Conn, *http.Response, error) {
	var o websocket.DialOptions
	if opts != nil {
		o = *opts
	}
	o.HTTPClient = ts.Client()
	conn, resp, err := websocket.Dial(ctx, ts.wsURL(), &o)
	if err != nil {
		return nil, resp, err
	}
	conn.SetReadLimit(4 << 20)
	return conn, resp, nil
}

// connect dials the server and returns both ends; the test's end closes
// them.
func (ts *testServer) connect(t *testing.T, ctx context.Context, opts *websocket.DialOptions) (*websocket.Conn, *http.Response, *Conn) {
	t.Helper()
	conn, resp, err := ts.dial(ctx, opts)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	return conn, resp, ts.accept(t)
}

// served records what Serve hands to the callbacks.
type served struct {
	msgs     chan Message // when no onMessage was given
	closeErr chan error   // the first onClose
	closes   atomic.Int32 // onClose calls
}

// serve serves c, passing messages to onMessage, or recording them in msgs
// when onMessage is nil.
func serve(c *Conn, onMessage func(Message)) *served {
	s := &served{closeErr: make(chan error, 1)}
	if onMessage == nil {
		s.msgs = make(chan Message, 4096)
		onMessage = func(m Message) {
			select {
			case s.msgs <- m:
			default:
				panic("test recorded too many messages")
			}
		}
	}
	c.Serve(onMessage, func(err error) {
		if s.closes.Add(1) == 1 {
			s.closeErr <- err
		}
	})
	return s
}

// echo returns an onMessage that writes every message back.
func echo(c *Conn) func(Message) {
	return func(m Message) { c.WriteMessages(m) }
}

func (s *served) next(t *testing.T) Message {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-time.After(waitLimit):
		t.Fatal("no message served")
	}
	return Message{}
}

func (s *served) waitClose(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.closeErr:
		return err
	case <-time.After(waitLimit):
		t.Fatal("onClose was not called")
	}
	return nil
}

func msgType(binary bool) websocket.MessageType {
	if binary {
		return websocket.MessageBinary
	}
	return websocket.MessageText
}

// roundTrip writes a message from the client and reads one back.
func roundTrip(t *testing.T, ctx context.Context, conn *websocket.Conn, typ websocket.MessageType, data []byte) {
	t.Helper()
	if err := conn.Write(ctx, typ, data); err != nil {
		t.Fatalf("client write: %v", err)
	}
	gotTyp, got, err := conn.Read(ctx)
	if err != nil {
		t.Fatalf("client read: %v", err)
	}
	if gotTyp != typ || !bytes.Equal(got, data) {
		t.Fatalf("echo of a %v message of %d bytes came back as a %v message of %d bytes", typ, len(data), gotTyp, len(got))
	}
}

func TestEcho(t *testing.T) {
	big := bytes.Repeat([]byte{0, 1, 2, 3, 4, 5, 6, 0xff}, 100_000/8)
	tests := []struct {
		name string
		typ  websocket.MessageType
		data []byte
	}{
		{"text", websocket.MessageText, []byte("hello, world")},
		{"binary", websocket.MessageBinary, []byte{0, 1, 2, 0xfe, 0xff}},
		{"empty text", websocket.MessageText, []byte{}},
		{"empty binary", websocket.MessageBinary, []byte{}},
		{"unicode text", websocket.MessageText, []byte("Grüße, 世界 🌍")},
		{"126 bytes", websocket.MessageText, bytes.Repeat([]byte("a"), 126)},
		{"70000 bytes", websocket.MessageText, bytes.Repeat([]byte("b"), 70000)},
		{"100 KB over several reads", websocket.MessageBinary, big},
	}
	forEachMode(t, AcceptOptions{}, func(t *testing.T, opts AcceptOptions) {
		ts := newTestServer(t, opts)
		ctx := testContext(t)
		conn, resp, c := ts.connect(t, ctx, nil)
		if got := resp.Header.Get("X-Handler"); got == "" {
			t.Error("a header set before Accept is missing from the 101 response")
		}
		if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != "" {
			t.Errorf("extension %q negotiated without compression", got)
		}
		s := serve(c, echo(c))
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				roundTrip(t, ctx, conn, tt.typ, tt.data)
			})
		}
		if err := conn.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Fatalf("client close: %v", err)
		}
		var ce *CloseError
		if err := s.waitClose(t); !errors.As(err, &ce) || ce.Code != StatusNormalClosure {
			t.Fatalf("onClose got %v, want a close with %d", err, StatusNormalClosure)
		}
	})
}

func TestManyMessagesInOrder(t *testing.T) {
	const n = 2000
	forEachMode(t, AcceptOptions{}, func(t *testing.T, opts AcceptOptions) {
		ts := newTestServer(t, opts)
		ctx := testContext(t)
		conn, _, c := ts.connect(t, ctx, nil)
		s := serve(c, nil)

		var wg sync.WaitGroup
		errs := make(chan error, 2)
		wg.Go(func() {
			// The server writes in batches of 1 to 8 messages.
			for i := 0; i < n; {
				batch := make([]Message, min(1+i%8, n-i))
				for j := range batch {
					batch[j] = Message{Data: fmt.Appendf(nil, "server %d", i+j), Binary: (i+j)%3 == 0}
				}
				if err := c.WriteMessages(batch...); err != nil {
					errs <- fmt.Errorf("server write: %w", err)
					return
				}
				i += len(batch)
			}
		})
		wg.Go(func() {
			for i := range n {
				if err := conn.Write(ctx, msgType(i%5 == 0), fmt.Appendf(nil, "client %d", i)); err != nil {
					errs <- fmt.Errorf("client write: %w", err)
					return
				}
			}
		})
		for i := range n {
			typ, data, err := conn.Read(ctx)
			if err != nil {
				t.Fatalf("client read %d: %v", i, err)
			}
			if want := fmt.Sprintf("server %d", i); string(data) != want || typ != msgType(i%3 == 0) {
				t.Fatalf("client read %v %q, want %v %q", typ, data, msgType(i%3 == 0), want)
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for i := range n {
			m := s.next(t)
			if want := fmt.Sprintf("client %d", i); string(m.Data) != want || m.Binary != (i%5 == 0) {
				t.Fatalf("server got %q (binary %v), want %q (binary %v)", m.Data, m.Binary, want, i%5 == 0)
			}
		}
		conn.Close(websocket.StatusNormalClosure, "")
	})
}

func TestMessageSizeLimit(t *testing.T) {
	tests := []struct {
		name    string
		maxSize int64
		size    int
		ok      bool
	}{
		{"1 MB with the default limit", 0, 1_000_000, true},
		{"over the default limit", 0, 1_000_001, false},
		{"at a set limit", 100, 100, true},
		{"over a set limit", 100, 101, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachMode(t, AcceptOptions{MaxMessageSize: tt.maxSize}, func(t *testing.T, opts AcceptOptions) {
				ts := newTestServer(t, opts)
				ctx := testContext(t)
				conn, _, c := ts.connect(t, ctx, nil)
				s := serve(c, echo(c))
				data := bytes.Repeat([]byte("0123456789"), tt.size/10+1)[:tt.size]
				if tt.ok {
					roundTrip(t, ctx, conn, websocket.MessageBinary, data)
					conn.Close(websocket.StatusNormalClosure, "")
					return
				}
				// The write may fail: the server closes as soon as it
				// has seen the length. The close frame is waiting anyway.
				conn.Write(ctx, websocket.MessageBinary, data)
				_, _, err := conn.Read(ctx)
				if got := websocket.CloseStatus(err); got != websocket.StatusMessageTooBig {
					t.Errorf("client read: %v (status %d), want close %d", err, got, websocket.StatusMessageTooBig)
				}
				var pe *ProtocolError
				if err := s.waitClose(t); !errors.As(err, &pe) || pe.Code != StatusMessageTooBig {
					t.Errorf("onClose got %v, want a protocol error %d", err, StatusMessageTooBig)
				}
			})
		})
	}
}

func TestPing(t *testing.T) {
	forEachMode(t, AcceptOptions{}, func(t *testing.T, opts AcceptOptions) {
		ts := newTestServer(t, opts)
		ctx := testContext(t)
		conn, _, c := ts.connect(t, ctx, nil)
		s := serve(c, nil)
		conn.CloseRead(ctx) // reads the pongs
		for i := range 3 {
			if err := conn.Ping(ctx); err != nil {
				t.Fatalf("ping %d: %v", i, err)
			}
		}
		if err := conn.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Fatalf("client close: %v", err)
		}
		s.waitClose(t)
		if n := len(s.msgs); n != 0 {
			t.Errorf("onMessage got %d messages for pings", n)
		}
	})
}

func TestClientClose(t *testing.T) {
	tests := []struct {
		code   websocket.StatusCode
		reason string
	}{
		{websocket.StatusNormalClosure, ""},
		{websocket.StatusGoingAway, "page closed"},
		{websocket.StatusPolicyViolation, "no"},
		{4000, "application code ✓"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(int(tt.code)), func(t *testing.T) {
			forEachMode(t, AcceptOptions{}, func(t *testing.T, opts AcceptOptions) {
				ts := newTestServer(t, opts)
				ctx := testContext(t)
				conn, _, c := ts.connect(t, ctx, nil)
				s := serve(c, nil)
				// Close waits for the server's close frame with the
				// same code.
				if err := conn.Close(tt.code, tt.reason); err != nil {
					t.Fatalf("client close: %v", err)
				}
				err := s.waitClose(t)
				var ce *CloseError
				if !errors.As(err, &ce) || ce.Code != int(tt.code) || ce.Reason != tt.reason {
					t.Fatalf("onClose got %v, want a *CloseError with %d %q", err, tt.code, tt.reason)
				}
				if n := s.closes.Load(); n != 1 {
					t.Errorf("onClose called %d times", n)
				}
			})
		})
	}
}

func TestServerClose(t *testing.T) {
	for _, beforeServe := range []bool{false, true} {
		name := "serving"
		if beforeServe {
			name = "before Serve"
		}
		t.Run(name, func(t *testing.T) {
			forEachMode(t, AcceptOptions{}, func(t *testing.T, opts AcceptOptions) {
				ts := newTestServer(t, opts)
				ctx := testContext(t)
				conn, _, c := ts.connect(t, ctx, nil)
				var s *served
				if !beforeServe {
					s = serve(c, nil)
				}
				closed := make(chan error, 1)
				go func() { closed <- c.Close(StatusNormalClosure, "bye") }()

				_, _, err := conn.Read(ctx)
				var ce websocket.CloseError
				if !errors.As(err, &ce) || ce.Code != websocket.StatusNormalClosure || ce.Reason != "bye" {
					t.Fatalf("client read: %v, want close 1000 \"bye\"", err)
				}
				select {
				case err := <-closed:
					if err != nil {
						t.Fatalf("Close: %v", err)
					}
				case <-time.After(waitLimit):
					t.Fatal("Close did not return")
				}
				if err := c.Close(StatusNormalClosure, "again"); err != ErrClosed {
					t.Errorf("second Close: %v, want ErrClosed", err)
				}
				if s != nil {
					if n := s.closes.Load(); n != 0 {
						t.Errorf("onClose called %d times after Close", n)
					}
				}
			})
		})
	}
}

func TestCloseNow(t *testing.T) {
	forEachMode(t, AcceptOptions{}, func(t *testing.T, opts AcceptOptions) {
		ts := newTestServer(t, opts)
		ctx := testContext(t)
		conn, _, c := ts.connect(t, ctx, nil)
		s := serve(c, echo(c))
		roundTrip(t, ctx, conn, websocket.MessageText, []byte("still there"))
		c.CloseNow()
		_, _, err := conn.Read(ctx)
		if err == nil || websocket.CloseStatus(err) != -1 {
			t.Fatalf("client read: %v, want the connection gone without a close frame", err)
		}
		// Once CloseNow returned the connection is closed by the local
		// side, so nothing may report it later.
		if n := s.closes.Load(); n != 0 {
			t.Errorf("onClose called %d times after CloseNow", n)
		}
		c.CloseNow() // a second time does nothing
		if err := c.Close(StatusNormalClosure, ""); err != ErrClosed {
			t.Errorf("Close after CloseNow: %v, want ErrClosed", err)
		}
	})
}

// TestWriteAfterClose checks the documentation of ErrClosed: "returned by
// writes on a connection that was closed".
func TestWriteAfterClose(t *testing.T) {
	closers := []struct {
		name  string
		close func(c *Conn, conn *websocket.Conn)
	}{
		{"CloseNow", func(c *Conn, conn *websocket.Conn) { c.CloseNow() }},
		{"Close", func(c *Conn, conn *websocket.Conn) {
			go conn.Read(context.Background()) // answers the close frame
			c.Close(StatusNormalClosure, "")
		}},
	}
	for _, tt := range closers {
		t.Run(tt.name, func(t *testing.T) {
			forEachMode(t, AcceptOptions{}, func(t *testing.T, opts AcceptOptions) {
				ts := newTestServer(t, opts)
				ctx := testContext(t)
				conn, _, c := ts.connect(t, ctx, nil)
				serve(c, nil)
				tt.close(c, conn)
				if err := c.WriteMessages(Message{Data: []byte("late")}); !errors.Is(err, ErrClosed) {
					t.Errorf("WriteMessages after %s: %v, want ErrClosed", tt.name, err)
				}
			})
		})
	}
}

func TestCompression(t *testing.T) {
	large := []byte(strings.Repeat("Socket.IO packets repeat their event names. ", 2000)) // 88 KB
	tests := []struct {
		name   string
		server bool
		client websocket.CompressionMode
		want   bool
	}{
		{"negotiated", true, websocket.CompressionNoContextTakeover, true},
		{"client allows context takeover", true, websocket.CompressionContextTakeover, true},
		{"refused by the server", false, websocket.CompressionNoContextTakeover, false},
		{"not asked by the client", true, websocket.CompressionDisabled, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachMode(t, AcceptOptions{Compression: tt.server}, func(t *testing.T, opts AcceptOptions) {
				ts := newTestServer(t, opts)
				ctx := testContext(t)
				conn, resp, c := ts.connect(t, ctx, &websocket.DialOptions{CompressionMode: tt.client})
				ext := resp.Header.Get("Sec-WebSocket-Extensions")
				if got := strings.HasPrefix(ext, "permessage-deflate"); got != tt.want {
					t.Fatalf("Sec-WebSocket-Extensions: %q, want permessage-deflate: %v", ext, tt.want)
				}
				if tt.want && !strings.Contains(ext, "server_no_context_takeover") {
					t.Errorf("Sec-WebSocket-Extensions: %q lacks server_no_context_takeover", ext)
				}
				if c.deflate != tt.want {
					t.Errorf("server conn deflate = %v, want %v", c.deflate, tt.want)
				}
				serve(c, echo(c))
				for i := range 2 { // each message on its own: no context kept
					roundTrip(t, ctx, conn, websocket.MessageText, large)
					roundTrip(t, ctx, conn, websocket.MessageBinary, large[i:])
					roundTrip(t, ctx, conn, websocket.MessageText, []byte("short"))
				}
				conn.Close(websocket.StatusNormalClosure, "")
			})
		})
	}
}

func TestReadMessageDeadline(t *testing.T) {
	forEachMode(t, AcceptOptions{}, func(t *testing.T, opts AcceptOptions) {
		ts := newTestServer(t, opts)
		ctx := testContext(t)
		conn, _, c := ts.connect(t, ctx, nil)

		_, err := c.ReadMessage(time.Now().Add(20 * time.Millisecond))
		var ne net.Error
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("ReadMessage with nothing sent: %v, want a timeout", err)
		}
		// The connection is still good.
		if err := conn.Write(ctx, websocket.MessageText, []byte("after the timeout")); err != nil {
			t.Fatal(err)
		}
		m, err := c.ReadMessage(time.Now().Add(waitLimit))
		if err != nil || string(m.Data) != "after the timeout" || m.Binary {
			t.Fatalf("ReadMessage: %q (binary %v), %v", m.Data, m.Binary, err)
		}
		serve(c, echo(c))
		roundTrip(t, ctx, conn, websocket.MessageBinary, []byte("served"))
		conn.Close(websocket.StatusNormalClosure, "")
	})
}

func TestMessagesBeforeServe(t *testing.T) {
	const n = 300
	big := bytes.Repeat([]byte("big"), 70_000) // more than one read
	forEachMode(t, AcceptOptions{}, func(t *testing.T, opts AcceptOptions) {
		ts := newTestServer(t, opts)
		ctx := testContext(t)
		conn, _, c := ts.connect(t, ctx, nil)
		for i := range n {
			if err := conn.Write(ctx, msgType(i%2 == 1), fmt.Appendf(nil, "m%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := conn.Write(ctx, websocket.MessageBinary, big); err != nil {
			t.Fatal(err)
		}
		// One read takes many messages and part of the big one; the
		// rest waits in the Conn and the socket.
		m, err := c.ReadMessage(time.Now().Add(waitLimit))
		if err != nil || string(m.Data) != "m0" {
			t.Fatalf("ReadMessage: %q, %v", m.Data, err)
		}
		s := serve(c, nil)
		for i := 1; i < n; i++ {
			m := s.next(t)
			if want := fmt.Sprintf("m%d", i); string(m.Data) != want || m.Binary != (i%2 == 1) {
				t.Fatalf("served %q (binary %v), want %q (binary %v)", m.Data, m.Binary, want, i%2 == 1)
			}
		}
		if m := s.next(t); !bytes.Equal(m.Data, big) || !m.Binary {
			t.Fatalf("served %d bytes (binary %v), want the big message", len(m.Data), m.Binary)
		}
		conn.Close(websocket.StatusNormalClosure, "")
	})
}

func TestHandshakeErrors(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		header     map[string]string // changes to a valid request; "" deletes
		wantStatus int
		wantBody   string
	}{
		{"POST", http.MethodPost, nil, http.StatusMethodNotAllowed, "POST"},
		{"no Upgrade header", "", map[string]string{"Upgrade": ""}, http.StatusUpgradeRequired, "Upgrade header"},
		{"Upgrade to something else", "", map[string]string{"Upgrade": "foo"}, http.StatusUpgradeRequired, "Upgrade header"},
		{"no upgrade in Connection", "", map[string]string{"Connection": "keep-alive"}, http.StatusUpgradeRequired, "Connection header"},
		{"version 8", "", map[string]string{"Sec-WebSocket-Version": "8"}, http.StatusUpgradeRequired, "Sec-WebSocket-Version"},
		{"no version", "", map[string]string{"Sec-WebSocket-Version": ""}, http.StatusUpgradeRequired, "Sec-WebSocket-Version"},
		{"key not base64", "", map[string]string{"Sec-WebSocket-Key": "not base64!"}, http.StatusBadRequest, "Sec-WebSocket-Key"},
		{"key of 8 bytes", "", map[string]string{"Sec-WebSocket-Key": base64.StdEncoding.EncodeToString([]byte("8 bytes!"))}, http.StatusBadRequest, "Sec-WebSocket-Key"},
		{"no key", "", map[string]string{"Sec-WebSocket-Key": ""}, http.StatusBadRequest, "Sec-WebSocket-Key"},
	}
	ts := newTestServer(t, AcceptOptions{})
	ctx := testContext(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			req, err := http.NewRequestWithContext(ctx, method, ts.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			for k, v := range tt.header {
				if v == "" {
					req.Header.Del(k)
				} else {
					req.Header.Set(k, v)
				}
			}
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus || !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("got %s %q, want %d and a body mentioning %q", resp.Status, body, tt.wantStatus, tt.wantBody)
			}
			if tt.wantStatus == http.StatusUpgradeRequired && resp.Header.Get("Sec-WebSocket-Version") != "13" {
				t.Errorf("426 response without Sec-WebSocket-Version: 13: %v", resp.Header)
			}
			select {
			case err := <-ts.errs:
				if !strings.Contains(err.Error(), tt.wantBody) {
					t.Errorf("Accept returned %v, want it to mention %q", err, tt.wantBody)
				}
			case <-time.After(waitLimit):
				t.Error("Accept returned no error")
			}
		})
	}
}

// TestManyConnections echoes on 200 connections read by the poller at
// once, then checks that the poller stops when they are gone.
func TestManyConnections(t *testing.T) {
	const nConns, nMsgs = 200, 20
	ts := newTestServer(t, AcceptOptions{})
	ctx := testContext(t)

	// The server side serves each connection as it comes.
	var mu sync.Mutex
	var conns []*Conn
	var servedConns []*served
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.CloseNow()
		}
	})
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for range nConns {
			select {
			case c := <-ts.conns:
				mu.Lock()
				conns = append(conns, c)
				servedConns = append(servedConns, serve(c, echo(c)))
				mu.Unlock()
			case <-ctx.Done():
				return
			}
		}
	}()

	var dialed, wg sync.WaitGroup
	dialed.Add(nConns)
	errs := make(chan error, nConns)
	for i := range nConns {
		wg.Go(func() {
			conn, _, err := ts.dial(ctx, nil)
			dialed.Done()
			if err != nil {
				errs <- err
				return
			}
			defer conn.CloseNow()
			dialed.Wait() // all connections open before any echo
			for j := range nMsgs {
				want := fmt.Appendf(nil, "conn %d message %d", i, j)
				if err := conn.Write(ctx, websocket.MessageText, want); err != nil {
					errs <- err
					return
				}
				_, got, err := conn.Read(ctx)
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, want) {
					errs <- fmt.Errorf("echo %q, want %q", got, want)
					return
				}
			}
			if err := conn.Close(websocket.StatusNormalClosure, ""); err != nil {
				errs <- fmt.Errorf("client close: %w", err)
			}
		})
	}
	wg.Wait()
	<-acceptDone
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(servedConns) != nConns {
		t.Fatalf("served %d connections, want %d", len(servedConns), nConns)
	}
	for _, s := range servedConns {
		var ce *CloseError
		if err := s.waitClose(t); !errors.As(err, &ce) || ce.Code != StatusNormalClosure {
			t.Fatalf("onClose got %v, want a close with %d", err, StatusNormalClosure)
		}
	}
	if pollerWatching != nil {
		waitFor(t, "the poller to stop", func() bool {
			_, running := pollerWatching()
			return !running
		})
	}
}

// Raw-socket tests: frames no client library would send.

const (
	sampleKey    = "dGhlIHNhbXBsZSBub25jZQ==" // RFC 6455 §1.3
	sampleAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

// rawDial opens a TCP connection to ts, sends a handshake with the extra
// header lines and then early bytes, and reads the 101 response.
func rawDial(t *testing.T, ts *testServer, extra []string, early []byte) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	req := "GET /chat HTTP/1.1\r\n" +
		"Host: " + ts.Listener.Addr().String() + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + sampleKey + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n"
	for _, h := range extra {
		req += h + "\r\n"
	}
	return rawRequest(t, ts, append([]byte(req+"\r\n"), early...))
}

func rawRequest(t *testing.T, ts *testServer, req []byte) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	nc, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(waitLimit))
	if _, err := nc.Write(req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake answered %s", resp.Status)
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != sampleAccept {
		t.Fatalf("Sec-WebSocket-Accept: %q, want %q", got, sampleAccept)
	}
	return nc, br, resp
}

// readFrame reads a frame sent by the server.
func readFrame(t *testing.T, br *bufio.Reader) (first byte, payload []byte) {
	t.Helper()
	var h [10]byte
	if _, err := io.ReadFull(br, h[:2]); err != nil {
		t.Fatalf("read frame header: %v", err)
	}
	if h[1]&maskBit != 0 {
		t.Fatal("server frame is masked")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(br, h[2:4]); err != nil {
			t.Fatalf("read frame length: %v", err)
		}
		n = uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		if _, err := io.ReadFull(br, h[2:10]); err != nil {
			t.Fatalf("read frame length: %v", err)
		}
		n = binary.BigEndian.Uint64(h[2:10])
	}
	if n > 1<<24 {
		t.Fatalf("server frame of %d bytes", n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(br, payload); err != nil {
		t.Fatalf("read frame payload: %v", err)
	}
	return h[0], payload
}

// expectFrame reads a frame and checks it.
func expectFrame(t *testing.T, br *bufio.Reader, wantFirst byte, wantPayload []byte) {
	t.Helper()
	first, payload := readFrame(t, br)
	if first != wantFirst || !bytes.Equal(payload, wantPayload) {
		t.Fatalf("server sent frame %#x % x, want %#x % x", first, payload, wantFirst, wantPayload)
	}
}

// expectEOF checks that the server closed the connection.
func expectEOF(t *testing.T, br *bufio.Reader) {
	t.Helper()
	if b, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("read after the close frame: %#x, %v; want EOF", b, err)
	}
}

func TestRawHandshake(t *testing.T) {
	ts := newTestServer(t, AcceptOptions{})
	req := "GET / HTTP/1.1\r\n" +
		"Host: example.com\r\n" +
		"upgrade: WebSocket\r\n" +
		"connection: keep-alive, Upgrade\r\n" +
		"sec-websocket-key:  " + sampleKey + " \r\n" +
		"sec-websocket-version: 13\r\n" +
		"Sec-WebSocket-Extensions: permessage-deflate\r\n" +
		"\r\n"
	_, _, resp := rawRequest(t, ts, []byte(req))
	c := ts.accept(t)
	if got := resp.Header.Get("Upgrade"); !strings.EqualFold(got, "websocket") {
		t.Errorf("Upgrade: %q", got)
	}
	if got := resp.Header.Get("Connection"); !strings.EqualFold(got, "upgrade") {
		t.Errorf("Connection: %q", got)
	}
	if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != "" {
		t.Errorf("Sec-WebSocket-Extensions: %q without Compression", got)
	}
	if c.RemoteAddr() == nil {
		t.Error("no remote address")
	}
}

func TestRawProtocolErrors(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		code  int
	}{
		{"unmasked frame", unmaskedFrame(fin|opText, []byte("hi")), StatusProtocolError},
		{"opcode 3", clientFrame(fin|0x3, []byte("hi")), StatusProtocolError},
		{"opcode 0xb", clientFrame(fin|0xb, nil), StatusProtocolError},
		{"RSV1 without deflate", clientFrame(fin|rsv1|opText, []byte("hi")), StatusProtocolError},
		{"ping of 126 bytes", clientFrame(fin|opPing, bytes.Repeat([]byte("p"), 126)), StatusProtocolError},
		{"fragmented ping", clientFrame(opPing, nil), StatusProtocolError},
		{"continuation without a message", clientFrame(fin|opContinuation, []byte("hi")), StatusProtocolError},
		{"new message before the last ended", concat(clientFrame(opText, []byte("a")), clientFrame(fin|opText, []byte("b"))), StatusProtocolError},
		{"text not UTF-8", clientFrame(fin|opText, []byte{'a', 0xff}), StatusInvalidData},
		{"over MaxMessageSize", clientFrame(fin|opBinary, make([]byte, 101)), StatusMessageTooBig},
		{"close of 1 byte", clientFrame(fin|opClose, []byte{3}), StatusProtocolError},
		{"close code 1005", closeFrame(StatusNoStatus, ""), StatusProtocolError},
		{"close code 999", closeFrame(999, ""), StatusProtocolError},
		{"close code 5000", closeFrame(5000, ""), StatusProtocolError},
		{"close reason not UTF-8", closeFrame(StatusNormalClosure, "\xff"), StatusInvalidData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachMode(t, AcceptOptions{MaxMessageSize: 100}, func(t *testing.T, opts AcceptOptions) {
				ts := newTestServer(t, opts)
				nc, br, _ := rawDial(t, ts, nil, nil)
				c := ts.accept(t)
				s := serve(c, nil)
				if _, err := nc.Write(tt.frame); err != nil {
					t.Fatal(err)
				}
				expectFrame(t, br, fin|opClose, binary.BigEndian.AppendUint16(nil, uint16(tt.code)))
				expectEOF(t, br)
				var pe *ProtocolError
				if err := s.waitClose(t); !errors.As(err, &pe) || pe.Code != tt.code {
					t.Fatalf("onClose got %v, want a *ProtocolError with %d", err, tt.code)
				}
				if n := len(s.msgs); n != 0 {
					t.Errorf("%d messages served", n)
				}
			})
		})
	}
}

func TestRawPingPong(t *testing.T) {
	forEachMode(t, AcceptOptions{}, func(t *testing.T, opts AcceptOptions) {
		ts := newTestServer(t, opts)
		nc, br, _ := rawDial(t, ts, nil, nil)
		c := ts.accept(t)
		serve(c, echo(c))
		long := bytes.Repeat([]byte("0123456789"), 13)[:maxControlLen]

		steps := []struct {
			name string
			send []byte
			want [][2][]byte // frames back: first byte, payload
		}{
			{"ping", clientFrame(fin|opPing, []byte("abc")), [][2][]byte{{{fin | opPong}, []byte("abc")}}},
			{"empty ping", clientFrame(fin|opPing, nil), [][2][]byte{{{fin | opPong}, {}}}},
			{"ping of 125 bytes", clientFrame(fin|opPing, long), [][2][]byte{{{fin | opPong}, long}}},
			{"unsolicited pong", concat(clientFrame(fin|opPong, []byte("x")), clientFrame(fin|opText, []byte("next"))),
				[][2][]byte{{{fin | opText}, []byte("next")}}},
			{"ping between fragments", concat(
				clientFrame(opText, []byte("frag")),
				clientFrame(fin|opPing, []byte("mid")),
				clientFrame(fin|opContinuation, []byte("ments")),
			), [][2][]byte{{{fin | opPong}, []byte("mid")}, {{fin | opText}, []byte("fragments")}}},
		}
		for _, st := range steps {
			// One byte at a time, so that every read ends inside a frame.
			for i := range st.send {
				if _, err := nc.Write(st.send[i : i+1]); err != nil {
					t.Fatalf("%s: %v", st.name, err)
				}
			}
			// Pongs are written by a goroutine of their own: a pong
			// and a message echoed meanwhile may come in either order.
			var got [][2][]byte
			for range st.want {
				first, payload := readFrame(t, br)
				got = append(got, [2][]byte{{first}, payload})
			}
			for _, f := range st.want {
				if !slices.ContainsFunc(got, func(g [2][]byte) bool { return g[0][0] == f[0][0] && bytes.Equal(g[1], f[1]) }) {
					t.Fatalf("%s: server sent %q, want %q in any order", st.name, got, st.want)
				}
			}
		}
		nc.Write(closeFrame(StatusNormalClosure, ""))
		expectFrame(t, br, fin|opClose, []byte{0x03, 0xe8})
	})
}

func TestRawCloseHandshake(t *testing.T) {
	tests := []struct {
		name      string
		frame     []byte
		wantReply []byte
		want      CloseError
	}{
		{"no payload", clientFrame(fin|opClose, nil), []byte{}, CloseError{Code: StatusNoStatus}},
		{"code and reason", closeFrame(StatusGoingAway, "bye"), []byte{0x03, 0xe9}, CloseError{Code: StatusGoingAway, Reason: "bye"}},
		{"application code", closeFrame(4321, ""), []byte{0x10, 0xe1}, CloseError{Code: 4321}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachMode(t, AcceptOptions{}, func(t *testing.T, opts AcceptOptions) {
				ts := newTestServer(t, opts)
				nc, br, _ := rawDial(t, ts, nil, nil)
				c := ts.accept(t)
				s := serve(c, nil)
				if _, err := nc.Write(tt.frame); err != nil {
					t.Fatal(err)
				}
				expectFrame(t, br, fin|opClose, tt.wantReply)
				expectEOF(t, br)
				var ce *CloseError
				if err := s.waitClose(t); !errors.As(err, &ce) || *ce != tt.want {
					t.Fatalf("onClose got %v, want %v", err, &tt.want)
				}
			})
		})
	}
}

// TestRawEarlyFrames sends frames together with the handshake, before the
// client could have seen the 101.
func TestRawEarlyFrames(t *testing.T) {
	forEachMode(t, AcceptOptions{}, func(t *testing.T, opts AcceptOptions) {
		ts := newTestServer(t, opts)
		early := concat(
			clientFrame(fin|opText, []byte("early 1")),
			clientFrame(fin|opPing, []byte("p")),
			clientFrame(fin|opBinary, []byte("early 2")),
			clientFrame(opText, []byte("early ")), // a message cut short
		)
		nc, br, _ := rawDial(t, ts, nil, early)
		c := ts.accept(t)
		expectFrame(t, br, fin|opPong, []byte("p"))
		m, err := c.ReadMessage(time.Now().Add(waitLimit))
		if err != nil || string(m.Data) != "early 1" || m.Binary {
			t.Fatalf("ReadMessage: %q (binary %v), %v", m.Data, m.Binary, err)
		}
		s := serve(c, nil)
		if m := s.next(t); string(m.Data) != "early 2" || !m.Binary {
			t.Fatalf("served %q (binary %v), want binary \"early 2\"", m.Data, m.Binary)
		}
		nc.Write(clientFrame(fin|opContinuation, []byte("3")))
		if m := s.next(t); string(m.Data) != "early 3" || m.Binary {
			t.Fatalf("served %q (binary %v), want text \"early 3\"", m.Data, m.Binary)
		}
		nc.Write(closeFrame(StatusNormalClosure, ""))
		expectFrame(t, br, fin|opClose, []byte{0x03, 0xe8})
		s.waitClose(t)
	})
}

// inflateFrame decompresses the payload of a compressed server frame.
func inflateFrame(t *testing.T, payload []byte) []byte {
	t.Helper()
	fr := flate.NewReader(io.MultiReader(bytes.NewReader(payload), strings.NewReader("\x00\x00\xff\xff")))
	defer fr.Close()
	out, err := io.ReadAll(fr)
	if err != nil && err != io.ErrUnexpectedEOF {
		t.Fatalf("inflate server frame: %v", err)
	}
	return out
}

func TestRawCompression(t *testing.T) {
	large := []byte(strings.Repeat("compressible ", 1000))
	forEachMode(t, AcceptOptions{Compression: true}, func(t *testing.T, opts AcceptOptions) {
		ts := newTestServer(t, opts)
		nc, br, resp := rawDial(t, ts, []string{"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"}, nil)
		if got := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.HasPrefix(got, "permessage-deflate") {
			t.Fatalf("Sec-WebSocket-Extensions: %q", got)
		}
		c := ts.accept(t)
		serve(c, echo(c))

		// A compressed message comes back compressed.
		nc.Write(clientFrame(fin|rsv1|opText, compress(t, large)))
		first, payload := readFrame(t, br)
		if first != fin|rsv1|opText {
			t.Fatalf("echo of a large message has first byte %#x, want %#x", first, fin|rsv1|opText)
		}
		if len(payload) >= len(large)/4 {
			t.Errorf("%d bytes compressed to %d", len(large), len(payload))
		}
		if got := inflateFrame(t, payload); !bytes.Equal(got, large) {
			t.Fatalf("echo inflates to %d bytes, want the %d sent", len(got), len(large))
		}
		// Short messages go uncompressed, however they came.
		nc.Write(clientFrame(fin|rsv1|opBinary, compress(t, []byte("short"))))
		expectFrame(t, br, fin|opBinary, []byte("short"))
		nc.Write(clientFrame(fin|opText, []byte("plain")))
		expectFrame(t, br, fin|opText, []byte("plain"))
		// A large uncompressed message is compressed on the way back.
		nc.Write(clientFrame(fin|opBinary, large))
		first, payload = readFrame(t, br)
		if first != fin|rsv1|opBinary || !bytes.Equal(inflateFrame(t, payload), large) {
			t.Fatalf("echo of a large plain message: first byte %#x, %d bytes", first, len(payload))
		}
		nc.Write(closeFrame(StatusNormalClosure, ""))
		expectFrame(t, br, fin|opClose, []byte{0x03, 0xe8})
	})
}

// TestReadMessageAfterPeerClose checks the promise of ReadMessage:
// "Messages that arrived before the connection failed are still returned,
// then the error."
func TestReadMessageAfterPeerClose(t *testing.T) {
	forEachMode(t, AcceptOptions{}, func(t *testing.T, opts AcceptOptions) {
		ts := newTestServer(t, opts)
		nc, br, _ := rawDial(t, ts, nil, nil)
		c := ts.accept(t)
		// Both frames in one write: one read gets both.
		nc.Write(concat(clientFrame(fin|opText, []byte("last words")), closeFrame(StatusGoingAway, "done")))
		m, err := c.ReadMessage(time.Now().Add(waitLimit))
		if err != nil || string(m.Data) != "last words" {
			t.Fatalf("first ReadMessage: %q, %v", m.Data, err)
		}
		expectFrame(t, br, fin|opClose, []byte{0x03, 0xe9})
		_, err = c.ReadMessage(time.Now().Add(waitLimit))
		var ce *CloseError
		if !errors.As(err, &ce) || ce.Code != StatusGoingAway || ce.Reason != "done" {
			t.Fatalf("second ReadMessage: %v, want the peer's close 1001 \"done\"", err)
		}
	})
}

func TestReadMessageProtocolError(t *testing.T) {
	forEachMode(t, AcceptOptions{}, func(t *testing.T, opts AcceptOptions) {
		ts := newTestServer(t, opts)
		nc, br, _ := rawDial(t, ts, nil, nil)
		c := ts.accept(t)
		nc.Write(unmaskedFrame(fin|opText, []byte("bare")))
		_, err := c.ReadMessage(time.Now().Add(waitLimit))
		var pe *ProtocolError
		if !errors.As(err, &pe) || pe.Code != StatusProtocolError {
			t.Fatalf("ReadMessage: %v, want a protocol error %d", err, StatusProtocolError)
		}
		expectFrame(t, br, fin|opClose, []byte{0x03, 0xea})
		expectEOF(t, br)
		// Serve after the failure reports it at once.
		s := serve(c, nil)
		if err := s.waitClose(t); !errors.As(err, &pe) {
			t.Fatalf("onClose got %v, want the protocol error", err)
		}
	})
}
