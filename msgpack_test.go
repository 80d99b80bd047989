package rally_test

// The msgpack parser between a rally hub and the Go client, and against
// hand-written input on a real websocket.

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/tinylib/msgp/msgp"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/internal/parser"
	"github.com/rallyhq/rally/internal/parser/msgpack"
	"github.com/rallyhq/rally/msgpackparser"
	"github.com/rallyhq/rally/sockettest"
)

var msgpackClient = &client.Options{Parser: msgpackparser.Parser{}}

func ctxWait(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type item struct {
	Name  string
	Blob  []byte
	Parts [][]byte
	Meta  map[string]any
}

func TestMsgpackGoClient(t *testing.T) {
	hub := rally.NewHub(&rally.Options{Parser: msgpackparser.Parser{}})
	hub.On("store", func(s *rally.Socket, it item) (int, item, error) {
		if it.Name == "" {
			return 0, item{}, errors.New("no name")
		}
		return len(it.Blob), it, nil
	})
	hub.On("ask me", func(s *rally.Socket, ack rally.Ack) {
		go func() {
			r, err := s.EmitWithAck(s.Context(), "ask", []byte{1, 2})
			if err != nil {
				ack.Send(err.Error())
				return
			}
			var b []byte
			r.Decode(&b)
			ack.Send(b)
		}()
	})
	hub.On("join", func(s *rally.Socket, room string) { s.Join(room) })
	hub.Of("/admin").On("where", func(s *rally.Socket) string { return s.Namespace().Name() })
	hub.Of("/private").Use(func(s *rally.Socket) error {
		return &rally.ConnectError{Message: "not authorized", Data: map[string]int{"code": 42}}
	})
	srv := sockettest.NewServer(t, hub)

	a := srv.Dial(t, "/", msgpackClient)
	a.On("ask", func(b []byte) []byte { return append(b, 3) })
	// Typed handlers with binary nested, and the error ack.
	in := item{Name: "x", Blob: []byte{1, 2, 3}, Parts: [][]byte{{4}, {}}, Meta: map[string]any{"n": 1.5, "deep": []any{[]byte{5}}}}
	r, err := a.EmitWithAck(ctxWait(t), "store", in)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var out item
	if err := r.Decode(&n, &out); err != nil {
		t.Fatal(err)
	}
	if n != 3 || out.Name != "x" || !bytes.Equal(out.Blob, in.Blob) || len(out.Parts) != 2 || !bytes.Equal(out.Parts[0], []byte{4}) ||
		!bytes.Equal(out.Meta["deep"].([]any)[0].([]byte), []byte{5}) || out.Meta["n"] != 1.5 {
		t.Errorf("store: got %d %+v", n, out)
	}
	_, err = a.EmitWithAck(ctxWait(t), "store", item{})
	var ae *rally.AckError
	if !errors.As(err, &ae) || ae.Message != "no name" {
		t.Errorf("error ack: got %v", err)
	}
	// The server's EmitWithAck to the client, answered with binary.
	r, err = a.EmitWithAck(ctxWait(t), "ask me")
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	if err := r.Decode(&b); err != nil || !bytes.Equal(b, []byte{1, 2, 3}) {
		t.Errorf("ask: got %x, %v", b, err)
	}

	// Rooms, broadcasts and acks from every client.
	bc, cc := srv.Dial(t, "/", msgpackClient), srv.Dial(t, "/", msgpackClient)
	recs := []*sockettest.Recorder{sockettest.Record(a), sockettest.Record(bc), sockettest.Record(cc)}
	for _, c := range []*client.Socket{a, bc} {
		if _, err := c.EmitWithAck(ctxWait(t), "join", "r"); err != nil {
			t.Fatal(err)
		}
	}
	if err := hub.To("r").Emit("news", "hi", map[string]any{"b": []byte{7}}); err != nil {
		t.Fatal(err)
	}
	if err := hub.Emit("all", []byte{8}); err != nil {
		t.Fatal(err)
	}
	for i, rec := range recs[:2] {
		var text string
		var m map[string][]byte
		rec.Expect(t, "news", &text, &m)
		if text != "hi" || !bytes.Equal(m["b"], []byte{7}) {
			t.Errorf("client %d: news %q %v", i, text, m)
		}
	}
	for i, rec := range recs {
		var got []byte
		rec.Expect(t, "all", &got)
		if !bytes.Equal(got, []byte{8}) {
			t.Errorf("client %d: all %x", i, got)
		}
	}
	if rec := recs[2]; rec.Count("news") != 0 {
		t.Error("a client outside the room got its broadcast")
	}
	for _, c := range []*client.Socket{bc, cc} {
		c.On("ping?", func(b []byte) []byte { return append(b, 'g') })
	}
	a.On("ping?", func(b []byte) []byte { return append(b, 'g') })
	replies, err := hub.EmitWithAck(ctxWait(t), "ping?", []byte("pon"))
	if err != nil || len(replies) != 3 {
		t.Fatalf("EmitWithAck: %d replies, %v", len(replies), err)
	}
	for _, r := range replies {
		var b []byte
		if r.Decode(&b); string(b) != "pong" {
			t.Errorf("EmitWithAck reply %q", b)
		}
	}

	// Namespaces and refusals.
	admin := srv.Dial(t, "/admin", msgpackClient)
	r, err = admin.EmitWithAck(ctxWait(t), "where")
	var where string
	if err != nil || r.Decode(&where) != nil || where != "/admin" {
		t.Errorf("where: %q, %v", where, err)
	}
	for nsp, want := range map[string]string{"/private": "not authorized", "/nope": "Invalid namespace"} {
		c := srv.Socket(t, nsp, &client.Options{Parser: msgpackparser.Parser{}, DisableReconnection: true})
		var ce *rally.ConnectError
		if err := c.Connect(ctxWait(t)); !errors.As(err, &ce) || ce.Message != want {
			t.Errorf("%s: got %v, want %q", nsp, err, want)
		}
	}
}

// Events broadcast while a client was cut off reach it when it comes
// back: recovery sends them with the hub's parser.
func TestMsgpackRecovery(t *testing.T) {
	hub := rally.NewHub(&rally.Options{Parser: msgpackparser.Parser{}, ConnectionStateRecovery: &rally.Recovery{}})
	gone := make(chan struct{}, 1)
	hub.OnDisconnect(func(s *rally.Socket, reason string) { gone <- struct{}{} })
	hub.On("join", func(s *rally.Socket, room string) { s.Join(room) })
	hub.On("cut", func(s *rally.Socket) { s.CloseConnection() })
	srv := sockettest.NewServer(t, hub)
	c := srv.Socket(t, "/", &client.Options{Parser: msgpackparser.Parser{}, ReconnectionDelay: 10 * time.Millisecond, RandomizationFactor: client.NoRandomization})
	rec := sockettest.Record(c)
	srv.Connect(t, c)
	if _, err := c.EmitWithAck(ctxWait(t), "join", "r"); err != nil {
		t.Fatal(err)
	}
	// A first event gives the client an offset to recover from.
	if err := hub.To("r").Emit("tick", []byte{6}, "w"); err != nil {
		t.Fatal(err)
	}
	rec.Wait(t, "tick")
	c.Emit("cut")
	recv(t, gone, "the disconnection")
	if err := hub.To("r").Emit("tick", []byte{7}, "x"); err != nil {
		t.Fatal(err)
	}
	var b []byte
	var x string
	rec.Expect(t, "tick", &b, &x)
	if !bytes.Equal(b, []byte{7}) || x != "x" || !c.Recovered() {
		t.Errorf("tick %x %q, recovered %v", b, x, c.Recovered())
	}
}

// wsMsgpack is a websocket speaking msgpack packets by hand.
type wsMsgpack struct {
	t *testing.T
	c *websocket.Conn
}

func dialMsgpack(t *testing.T, srv *sockettest.Server) *wsMsgpack {
	t.Helper()
	r := dialRaw(t, srv)
	return &wsMsgpack{t: t, c: r.c}
}

func (w *wsMsgpack) send(typ websocket.MessageType, b []byte) {
	w.t.Helper()
	if err := w.c.Write(context.Background(), typ, b); err != nil {
		w.t.Fatal(err)
	}
}

// read returns the next packet, skipping pings.
func (w *wsMsgpack) read() *parser.Packet {
	w.t.Helper()
	for {
		typ, data, err := w.c.Read(ctxWait(w.t))
		if err != nil {
			w.t.Fatalf("read: %v", err)
		}
		if typ == websocket.MessageText {
			if string(data) == "2" {
				continue
			}
			w.t.Fatalf("text message %q on a msgpack connection", data)
		}
		p, err := msgpack.Decode(data)
		if err != nil {
			w.t.Fatalf("undecodable %x: %v", data, err)
		}
		return p
	}
}

func (w *wsMsgpack) closed() {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		typ, data, err := w.c.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				w.t.Fatal("the server kept the connection open")
			}
			return
		}
		if typ != websocket.MessageText || string(data) != "2" {
			w.t.Fatalf("got %x, want the connection closed", data)
		}
	}
}

func mpMap(kv ...any) []byte {
	b := msgp.AppendMapHeader(nil, uint32(len(kv)/2))
	for i := 0; i < len(kv); i += 2 {
		b = msgp.AppendString(b, kv[i].(string))
		switch v := kv[i+1].(type) {
		case []byte:
			b = append(b, v...)
		case string:
			b = msgp.AppendString(b, v)
		case int:
			b = msgp.AppendInt(b, v)
		}
	}
	return b
}

func mpArr(elems ...[]byte) []byte {
	b := msgp.AppendArrayHeader(nil, uint32(len(elems)))
	for _, e := range elems {
		b = append(b, e...)
	}
	return b
}

// Bad input closes the connection that sent it, as Node's server closes it
// on a parser error, and disturbs no other; extensions are accepted as
// Node accepts them.
func TestMsgpackBadInput(t *testing.T) {
	mpStr := func(s string) []byte { return msgp.AppendString(nil, s) }
	ev := func(data []byte) []byte { return mpMap("type", 2, "nsp", "/", "data", data) }
	deep := bytes.Repeat([]byte{0x91}, msgpack.MaxDepth+5)
	tests := []struct {
		name string
		text bool
		data []byte
	}{
		{"text message", true, []byte(`42["x"]`)},
		{"malformed MessagePack", false, []byte{0xc1}},
		{"truncated", false, ev(mpArr(mpStr("x")))[:10]},
		{"trailing bytes", false, append(ev(mpArr(mpStr("x"))), 1)},
		{"not a map", false, mpArr(mpStr("x"))},
		{"type as string", false, mpMap("type", "2", "nsp", "/", "data", mpArr(mpStr("x")))},
		{"nsp as number", false, mpMap("type", 2, "nsp", 1, "data", mpArr(mpStr("x")))},
		{"data not an array", false, ev(mpMap("x", 1))},
		{"event name null", false, ev(mpArr([]byte{0xc0}))},
		{"event name binary", false, ev(mpArr(msgp.AppendBytes(nil, []byte("x"))))},
		{"reserved event name", false, ev(mpArr(mpStr("disconnect")))},
		{"id as string", false, mpMap("type", 2, "nsp", "/", "data", mpArr(mpStr("x")), "id", "1")},
		{"too deep", false, ev(mpArr(mpStr("x"), append(deep, 0xc0)))},
		{"huge array header", false, ev([]byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0})},
		{"map key a map", false, ev(mpArr(mpStr("x"), []byte{0x81, 0x80, 0xc0}))},
		{"second CONNECT", false, mpMap("type", 0, "nsp", "/")},
	}
	hub := rally.NewHub(&rally.Options{Parser: msgpackparser.Parser{}, OnError: func(*rally.Socket, error) {}})
	exts := make(chan []any, 1)
	hub.On("x", func(s *rally.Socket, args ...any) { exts <- args })
	hub.On("echo", func(s *rally.Socket, v any) any { return v })
	srv := sockettest.NewServer(t, hub)
	bystander := srv.Dial(t, "/", msgpackClient)

	connect := func(t *testing.T) *wsMsgpack {
		w := dialMsgpack(t, srv)
		w.send(websocket.MessageBinary, mpMap("type", 0, "nsp", "/"))
		if p := w.read(); p.Type != parser.Connect || !strings.Contains(string(p.Data), `"sid"`) {
			t.Fatalf("CONNECT reply %s", p)
		}
		return w
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := connect(t)
			typ := websocket.MessageBinary
			if tt.text {
				typ = websocket.MessageText
			}
			w.send(typ, tt.data)
			w.closed()
		})
	}
	t.Run("extensions", func(t *testing.T) {
		w := connect(t)
		w.send(websocket.MessageBinary, ev(mpArr(mpStr("x"), []byte{0xd5, 5, 1, 2}, []byte{0xc7, 1, 0, 9}, []byte{0xd4, 0, 0})))
		got := recv(t, exts, "the event")
		if len(got) != 3 || !bytes.Equal(got[1].([]byte), []byte{9}) || got[2] != nil {
			t.Fatalf("got %#v", got)
		}
		if e, ok := got[0].([]any); !ok || e[0] != 5.0 || !bytes.Equal(e[1].([]byte), []byte{1, 2}) {
			t.Errorf("extension 5: got %#v", got[0])
		}
		w.send(websocket.MessageBinary, mpMap("type", 2, "nsp", "/", "id", 4, "data", mpArr(mpStr("echo"), msgp.AppendFloat64(nil, 2.5))))
		if p := w.read(); p.Type != parser.Ack || p.ID != 4 || string(p.Data) != "[2.5]" {
			t.Errorf("ack %s", p)
		}
	})
	r, err := bystander.EmitWithAck(ctxWait(t), "echo", []byte{1})
	var b []byte
	if err != nil || r.Decode(&b) != nil || !bytes.Equal(b, []byte{1}) {
		t.Errorf("the bystander: %x, %v", b, err)
	}
}
