package rally_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/sockettest"
)

func TestOnRefusesUnusableHandlers(t *testing.T) {
	tests := []struct {
		name    string
		event   string
		handler any
		want    string
	}{
		{"not a function", "e", 42, "got int, want a function"},
		{"nil function", "e", (func(*rally.Socket))(nil), "nil function"},
		{"no parameters", "e", func() {}, "must take *rally.Socket first"},
		{"no socket", "e", func(string) {}, "parameter 1 of func(string) is string, want *rally.Socket"},
		{"socket not first", "e", func(string, *rally.Socket) {}, "parameter 1"},
		{"channel param", "e", func(*rally.Socket, chan int) {}, "cannot decode JSON into chan int"},
		{"interface param", "e", func(*rally.Socket, io.Reader) {}, "interface io.Reader"},
		{"func result", "e", func(*rally.Socket) func() { return nil }, "cannot encode func()"},
		{"error not last", "e", func(*rally.Socket) (error, int) { return nil, 0 }, "only the last result may be an error"},
		{"reserved", "disconnect", func(*rally.Socket) {}, "reserved event name"},
		{"empty", "", func(*rally.Socket) {}, "empty event name"},
	}
	hub := rally.NewHub(nil)
	defer hub.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				p := recover()
				if p == nil {
					t.Fatal("On accepted the handler")
				}
				if msg, _ := p.(string); !strings.Contains(msg, tt.want) {
					t.Fatalf("panic %q, want it to mention %q", p, tt.want)
				}
			}()
			hub.On(tt.event, tt.handler)
		})
	}
}

type point struct {
	X, Y int
}

func TestTypedHandlers(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			var mu sync.Mutex
			var errs []error
			hub := rally.NewHub(&rally.Options{OnError: func(s *rally.Socket, err error) {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}})
			hub.On("point", func(s *rally.Socket, p point, scale float64) (point, error) {
				return point{p.X * int(scale), p.Y * int(scale)}, nil
			})
			hub.On("many", func(s *rally.Socket) (string, int, []byte) { return "a", 1, []byte{9} })
			hub.On("nothing", func(s *rally.Socket) {})
			hub.On("optional", func(s *rally.Socket, a string, b *int) (bool, bool) { return a == "", b == nil })
			hub.On("rest", func(s *rally.Socket, first string, rest ...int) int {
				sum := 0
				for _, r := range rest {
					sum += r
				}
				return sum
			})
			hub.On("relay", func(s *rally.Socket, args ...any) error { return s.Emit("relayed", args...) })
			hub.On("fail", func(s *rally.Socket) error { return errors.New("it failed") })
			hub.On("panic", func(s *rally.Socket) { panic("boom") })
			srv := sockettest.NewServer(t, hub)
			m := join(t, srv, "/", mode.opts)
			ack := func(event string, args ...any) (rally.Reply, error) {
				return m.c.EmitWithAck(ctx5s(t), event, args...)
			}

			r, err := ack("point", map[string]int{"X": 2, "Y": 3}, 10)
			var p point
			if err != nil || r.Decode(&p) != nil || p != (point{20, 30}) {
				t.Fatalf("point: %+v %v", p, err)
			}
			r, err = ack("many")
			var s string
			var n int
			var b []byte
			if err != nil || r.Len() != 3 || r.Decode(&s, &n, &b) != nil || s != "a" || n != 1 || !bytes.Equal(b, []byte{9}) {
				t.Fatalf("many: %q %d %v %v", s, n, b, err)
			}
			if r, err = ack("nothing"); err != nil || r.Len() != 0 {
				t.Fatalf("nothing: %d args, %v", r.Len(), err)
			}
			r, err = ack("optional")
			var aEmpty, bNil bool
			if err != nil || r.Decode(&aEmpty, &bNil) != nil || !aEmpty || !bNil {
				t.Fatalf("missing arguments are not zero values: %v %v %v", aEmpty, bNil, err)
			}
			r, err = ack("rest", "x", 1, 2, 3)
			if err != nil || r.Decode(&n) != nil || n != 6 {
				t.Fatalf("variadic: %d %v", n, err)
			}

			// ...any keeps every argument as sent, binary included.
			in := []any{"text", 1.5, true, nil, map[string]any{"k": []any{"v", []byte{1, 2}}}, []byte{3}}
			m.c.Emit("relay", in...)
			got := m.events.Wait(t, "relayed").Values()
			if len(got) != len(in) || got[0] != "text" || got[1] != 1.5 || got[2] != true || got[3] != nil ||
				!bytes.Equal(got[4].(map[string]any)["k"].([]any)[1].([]byte), []byte{1, 2}) || !bytes.Equal(got[5].([]byte), []byte{3}) {
				t.Fatalf("relayed %#v", got)
			}

			var ae *rally.AckError
			if _, err = ack("point", "not an object"); !errors.As(err, &ae) || !strings.Contains(ae.Message, "argument 1") {
				t.Fatalf("bad argument: %v", err)
			}
			if _, err = ack("fail"); !errors.As(err, &ae) || ae.Message != "it failed" {
				t.Fatalf("handler error: %v", err)
			}
			if _, err = ack("panic"); !errors.As(err, &ae) || ae.Message != "internal server error" {
				t.Fatalf("panic: %v", err)
			}
			// An event no handler takes gets no answer, as with the
			// official server.
			short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			_, err = m.c.EmitWithAck(short, "unknown")
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("unknown event: %v, want no answer", err)
			}
			// The socket survived all of that.
			if r, err = ack("nothing"); err != nil {
				t.Fatalf("after errors: %v", err)
			}

			mu.Lock()
			defer mu.Unlock()
			if len(errs) != 3 {
				t.Fatalf("OnError got %d errors: %v", len(errs), errs)
			}
			for _, err := range errs {
				var ee *rally.EventError
				if !errors.As(err, &ee) {
					t.Fatalf("%v is not an EventError", err)
				}
			}
		})
	}
}

func TestSocketHandlersOverrideNamespace(t *testing.T) {
	hub := rally.NewHub(nil)
	hub.On("who", func(s *rally.Socket) string { return "namespace" })
	hub.OnConnect(func(s *rally.Socket) {
		if s.Handshake().Query.Get("own") != "" {
			s.On("who", func(s *rally.Socket) string { return "socket" })
		}
	})
	srv := sockettest.NewServer(t, hub)
	plain := srv.Dial(t, "/", nil)
	own := srv.Dial(t, "/", &client.Options{Query: map[string][]string{"own": {"1"}}})
	for _, x := range []struct {
		c    *client.Socket
		want string
	}{{plain, "namespace"}, {own, "socket"}} {
		r, err := x.c.EmitWithAck(ctx5s(t), "who")
		var got string
		if err != nil || r.Decode(&got) != nil || got != x.want {
			t.Fatalf("got %q, want %q (%v)", got, x.want, err)
		}
	}
}

func TestHandlersRunInOrderPerSocket(t *testing.T) {
	hub := rally.NewHub(nil)
	var mu sync.Mutex
	var seen []int
	hub.On("n", func(s *rally.Socket, i int) {
		mu.Lock()
		seen = append(seen, i)
		mu.Unlock()
	})
	srv := sockettest.NewServer(t, hub)
	c := srv.Dial(t, "/", nil)
	for i := range 200 {
		c.Emit("n", i)
	}
	if _, err := c.EmitWithAck(context.Background(), "n", 200); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, v := range seen {
		if v != i {
			t.Fatalf("event %d handled as %d", i, v)
		}
	}
	if len(seen) != 201 {
		t.Fatalf("%d events handled", len(seen))
	}
}

func TestReservedEmit(t *testing.T) {
	hub := rally.NewHub(nil)
	defer hub.Close()
	for _, name := range []string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"} {
		if err := hub.Emit(name); err == nil {
			t.Errorf("Emit(%q) accepted", name)
		}
	}
	args := make([]any, 11)
	for i := range args {
		args[i] = []byte{byte(i)}
	}
	if err := hub.Emit("too much binary", args...); err == nil {
		t.Error("11 attachments accepted")
	}
}
