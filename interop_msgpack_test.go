package rally_test

// Interop with the official client using socket.io-msgpack-parser
// (testdata/interop/msgpack.js), in every transport mode, and the same
// script against Node's server with that parser (server.js's "msgpack"
// scenario): what the client sees must be the same.

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/internal/nodetest"
	"github.com/rallyhq/rally/msgpackparser"
	"github.com/rallyhq/rally/sockettest"
)

// clientScenarioHandlers registers the handlers that the msgpack and v2
// client scripts share: greetings, message, echo, an error ack, a
// server-side ack with binary, rooms and broadcasts.
func clientScenarioHandlers(hub *rally.Hub) {
	hub.OnConnect(func(s *rally.Socket) {
		s.Emit("greetings", "Hey!", map[string]string{"ms": "jane"}, []byte{4, 3, 2, 1})
	})
	hub.On("message", func(s *rally.Socket, data string) { s.Send(data) })
	hub.On("echo", func(s *rally.Socket, ack rally.Ack, args ...rally.Raw) { ack.Send(rally.Args(args)...) })
	hub.On("divide", func(s *rally.Socket, a, b float64) (float64, error) {
		if b == 0 {
			return 0, errors.New("division by zero")
		}
		return a / b, nil
	})
	hub.On("ask me", func(s *rally.Socket, ack rally.Ack) {
		go func() {
			ctx, cancel := context.WithTimeout(s.Context(), 5*time.Second)
			defer cancel()
			r, err := s.EmitWithAck(ctx, "ask", []byte{5, 6})
			if err != nil {
				ack.Send(map[string]string{"error": err.Error()})
				return
			}
			ack.Send(r.Values()...)
		}()
	})
	hub.On("join", func(s *rally.Socket, room string) { s.Join(room) })
	hub.On("to room", func(s *rally.Socket, room string) error {
		return s.To(room).Emit("room news", "hi", []byte{1})
	})
	hub.On("everyone", func(s *rally.Socket) error {
		return hub.Emit("all news", map[string]any{"bin": []byte{2}})
	})
}

// msgpackHandlers registers what server.js's "msgpack" scenario registers.
func msgpackHandlers(hub *rally.Hub) {
	clientScenarioHandlers(hub)
	hub.On("types", func(s *rally.Socket) (int, int64, float64, []any, map[string]any, any) {
		return 1, -(1 << 40), 0.25, []any{1, "x"}, map[string]any{}, nil
	})
	hub.Of("/admin").On("where", func(s *rally.Socket, b []byte) (string, []byte) {
		return s.Namespace().Name(), b
	})
	hub.Of("/private").Use(func(s *rally.Socket) error {
		return &rally.ConnectError{Message: "not authorized", Data: map[string]int{"code": 42}}
	})
}

func startMsgpack(t *testing.T, mode string) *interopServer {
	t.Helper()
	srv := startInterop(t, mode, &rally.Options{Parser: msgpackparser.Parser{}}, nil)
	msgpackHandlers(srv.hub)
	return srv
}

func TestInteropMsgpackHello(t *testing.T) {
	forEachInteropMode(t, func(t *testing.T, mode string) {
		srv := startMsgpack(t, mode)
		type salutation struct {
			text string
			who  map[string]any
			data []byte
		}
		salutations := make(chan salutation, 1)
		srv.hub.On("salutations", func(s *rally.Socket, text string, who map[string]any, data []byte) {
			salutations <- salutation{text, who, data}
		})
		p := srv.node(t, "msgpack.js", "hello")
		sal := recv(t, salutations, "the salutations event")
		if sal.text != "Hello!" || !bytes.Equal(sal.data, []byte{1, 2, 3, 4}) {
			t.Errorf("salutations: got %q, %x; want Hello!, 01020304", sal.text, sal.data)
		}
		checkJSON(t, "salutations object", sal.who, map[string]any{"mr": "john"})

		logs := waitEvents(t, p, 2, "log", nil)
		var got []any
		for _, l := range logs {
			got = append(got, l.Get("args"))
		}
		slices.SortFunc(got, func(a, b any) int { return strings.Compare(jsonText(t, a), jsonText(t, b)) })
		checkJSON(t, "what Node logged", got, []any{
			[]any{"Hello!"},
			[]any{"Hey!", map[string]any{"ms": "jane"}, buf([]byte{4, 3, 2, 1})},
		})
		assertTransports(t, p, mode)
	})
}

// msgpackWant is the transcript msgpack.js prints against rally.
var msgpackWant = map[string]any{
	"greetings": []any{"Hey!", map[string]any{"ms": "jane"}, buf([]byte{4, 3, 2, 1})},
	"echo": []any{"text",
		map[string]any{"deep": map[string]any{"bin": buf([]byte{1, 2}), "list": []any{buf([]byte{3}), nil}}},
		[]any{buf(nil), buf([]byte{4, 5})}, 42, -7, 1.5, 1 << 40, -(1 << 33), true, nil, map[string]any{}, []any{}},
	"types":   []any{1, -(1 << 40), 0.25, []any{1, "x"}, map[string]any{}, nil},
	"date":    []any{"2024-01-02T03:04:05.678Z"},
	"failing": []any{map[string]any{"error": "division by zero"}},
	"divide":  []any{0.25},
	"asked":   []any{map[string]any{"got": buf([]byte{5, 6}), "bin": buf([]byte{9, 8})}},
	"broadcasts": map[string]any{
		"a": []any{[]any{"all news", map[string]any{"bin": buf([]byte{2})}}},
		"b": []any{[]any{"room news", "hi", buf([]byte{1})}, []any{"all news", map[string]any{"bin": buf([]byte{2})}}},
		"c": []any{[]any{"all news", map[string]any{"bin": buf([]byte{2})}}},
	},
	"admin":   []any{"/admin", buf([]byte{1})},
	"nope":    []any{map[string]any{"message": "Invalid namespace", "data": map[string]any{"$undefined": true}}},
	"private": []any{map[string]any{"message": "not authorized", "data": map[string]any{"code": 42}}},
}

// msgpackTranscript runs msgpack.js's "all" part against url.
func msgpackTranscript(t *testing.T, url, mode string) map[string]any {
	t.Helper()
	p := (&interopServer{url: url, mode: mode}).node(t, "msgpack.js", "all")
	l := waitEvent(t, p, "transcript", nil)
	tr, _ := l.Get("transcript").(map[string]any)
	return tr
}

func TestInteropMsgpack(t *testing.T) {
	forEachInteropMode(t, func(t *testing.T, mode string) {
		srv := startMsgpack(t, mode)
		got := msgpackTranscript(t, srv.url, mode)
		checkJSON(t, "what the client saw of rally", got, msgpackWant)

		// The same script against Node's server with the parser. Two
		// differences, both of types that rally's data model (JSON and
		// []byte) does not keep: Node's server echoes a Date as a Date,
		// rally as its ISO string (what JSON carries); and it echoes an
		// ArrayBuffer (notepack's ext type 0) as one, rally as bin, which a
		// Node client reads as a Buffer (a browser, as an ArrayBuffer).
		node := msgpackTranscript(t, nodeMsgpackServer(t, mode), mode)
		checkJSON(t, "Node's echo of a Date", node["date"], []any{map[string]any{"$date": "2024-01-02T03:04:05.678Z"}})
		comparable := func(m map[string]any) any {
			m = maps.Clone(m)
			delete(m, "date")
			return asBuffers(m)
		}
		checkJSON(t, "what the client saw of rally and of Node", comparable(got), comparable(node))
	})
}

// nodeMsgpackServer starts server.js's "msgpack" scenario with the msgpack
// parser and returns its URL.
func nodeMsgpackServer(t *testing.T, mode string) string {
	t.Helper()
	p := nodetest.Start(t, "server.js", nodetest.Options{
		Args:    []string{"msgpack"},
		Env:     []string{"RALLY_TRANSPORT=" + mode, "RALLY_PARSER=msgpack"},
		Timeout: 2 * time.Minute,
	})
	return waitEvent(t, p, "listening", nil).Text("url")
}

// asBuffers returns v with every {"$bytes": hex} (a binary value other
// than a Buffer) as {"$buffer": hex}.
func asBuffers(v any) any {
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = asBuffers(e)
		}
		return out
	case map[string]any:
		if h, ok := v["$bytes"]; ok && len(v) == 1 {
			return map[string]any{"$buffer": h}
		}
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = asBuffers(e)
		}
		return out
	}
	return v
}

// The Go client with the msgpack parser against Node's server with it.
func TestInteropMsgpackGoClientNode(t *testing.T) {
	nodetest.Node(t)
	for _, transports := range [][]string{nil, {rally.TransportWebSocket}, {rally.TransportPolling}} {
		t.Run(strings.Join(append([]string{"t"}, transports...), "-"), func(t *testing.T) {
			t.Parallel()
			url := nodeMsgpackServer(t, "default")
			c := client.New(url, &client.Options{Parser: msgpackparser.Parser{}, Transports: transports})
			t.Cleanup(func() { c.Close() })
			rec := sockettest.Record(c)
			c.On("ask", func(b []byte) map[string]any { return map[string]any{"got": b, "bin": []byte{9, 8}} })
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			if err := c.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			var hey string
			var who map[string]string
			var data []byte
			rec.Expect(t, "greetings", &hey, &who, &data)
			if hey != "Hey!" || who["ms"] != "jane" || !bytes.Equal(data, []byte{4, 3, 2, 1}) {
				t.Errorf("greetings: %q %v %x", hey, who, data)
			}
			r, err := c.EmitWithAck(ctx, "echo", "text", map[string]any{"deep": []any{[]byte{1, 2}, nil}}, 1.5, -(1 << 40))
			if err != nil {
				t.Fatal(err)
			}
			checkJSON(t, "echo", bufValues(r.Values()), []any{"text", map[string]any{"deep": []any{buf([]byte{1, 2}), nil}}, 1.5, -(1 << 40)})
			r, err = c.EmitWithAck(ctx, "ask me")
			if err != nil {
				t.Fatal(err)
			}
			checkJSON(t, "ask", bufValues(r.Values()), []any{map[string]any{"got": buf([]byte{5, 6}), "bin": buf([]byte{9, 8})}})
			r, err = c.EmitWithAck(ctx, "types")
			if err != nil {
				t.Fatal(err)
			}
			checkJSON(t, "types", r.Values(), []any{1, -(1 << 40), 0.25, []any{1, "x"}, map[string]any{}, nil})
			var ce *rally.ConnectError
			priv := client.New(url+"/private", &client.Options{Parser: msgpackparser.Parser{}, DisableReconnection: true})
			t.Cleanup(func() { priv.Close() })
			if err := priv.Connect(ctx); !errors.As(err, &ce) || ce.Message != "not authorized" {
				t.Errorf("/private: %v", err)
			}
		})
	}
}

// bufValues returns v with []byte values as buf prints them.
func bufValues(v any) any {
	switch v := v.(type) {
	case []byte:
		return buf(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = bufValues(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = bufValues(e)
		}
		return out
	}
	return v
}
