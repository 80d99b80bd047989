package rally_test

// An empty binary attachment is a zero-length []byte, never nil: it reaches
// handlers as []byte{} whatever the transport, and what a handler sends back
// travels as an attachment again, not as null.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/sockettest"
)

const emptyBinaryEvent = `451-["reflect",{"_placeholder":true,"num":0}]`

// reflectHub registers "reflect" (a []byte parameter) and "reflectAny"
// (...any) handlers that send back what they got, and reports each first
// argument on got.
func reflectHub(t *testing.T) (*sockettest.Server, chan any) {
	t.Helper()
	got := make(chan any, 4)
	hub := rally.NewHub(nil)
	hub.On("reflect", func(s *rally.Socket, b []byte) {
		got <- b
		s.Emit("reflect", b)
	})
	hub.On("reflectAny", func(s *rally.Socket, args ...any) {
		if len(args) > 0 {
			got <- args[0]
		} else {
			got <- "no arguments"
		}
		s.Emit("reflectAny", args...)
	})
	return sockettest.NewServer(t, hub), got
}

// checkEmptyBytes fails unless v is a non-nil zero-length []byte.
func checkEmptyBytes(t *testing.T, what string, v any) {
	t.Helper()
	b, ok := v.([]byte)
	if !ok || b == nil || len(b) != 0 {
		t.Errorf("%s: the handler got %#v, want []byte{}", what, v)
	}
}

func receiveArg(t *testing.T, got chan any, what string) any {
	t.Helper()
	select {
	case v := <-got:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: the handler did not run", what)
		return nil
	}
}

func TestEmptyBinaryOverPolling(t *testing.T) {
	for _, event := range []string{"reflect", "reflectAny"} {
		t.Run(event, func(t *testing.T) {
			srv, got := reflectHub(t)
			p := openPoll(t, srv)
			if status, body := p.do("POST", p.q(), "40"); status != 200 || body != "ok" {
				t.Fatalf("CONNECT: %d %q", status, body)
			}
			if _, body := p.do("GET", p.q(), ""); !strings.HasPrefix(body, `40{"sid":"`) {
				t.Fatalf("CONNECT reply %q", body)
			}
			packet := strings.Replace(emptyBinaryEvent, "reflect", event, 1)
			// The attachment is "b" and the base64 of nothing.
			if status, body := p.do("POST", p.q(), packet+"\x1eb"); status != 200 || body != "ok" {
				t.Fatalf("POST: %d %q", status, body)
			}
			checkEmptyBytes(t, event, receiveArg(t, got, event))
			want := packet + "\x1eb"
			if _, body := p.do("GET", p.q(), ""); body != want {
				t.Errorf("sent back %q, want %q", body, want)
			}
		})
	}
}

func TestEmptyBinaryOverWebSocket(t *testing.T) {
	for _, event := range []string{"reflect", "reflectAny"} {
		t.Run(event, func(t *testing.T) {
			srv, got := reflectHub(t)
			r := dialRaw(t, srv)
			r.text("40")
			if reply := r.read(); !strings.HasPrefix(reply, `40{"sid":"`) {
				t.Fatalf("CONNECT reply %q", reply)
			}
			packet := strings.Replace(emptyBinaryEvent, "reflect", event, 1)
			r.text(packet)
			r.write(websocket.MessageBinary, "") // a binary frame of length 0
			checkEmptyBytes(t, event, receiveArg(t, got, event))

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for i, want := range []struct {
				typ  websocket.MessageType
				data string
			}{{websocket.MessageText, packet}, {websocket.MessageBinary, ""}} {
				typ, data, err := r.c.Read(ctx)
				if err != nil {
					t.Fatalf("reading message %d back: %v", i+1, err)
				}
				if typ != want.typ || string(data) != want.data {
					t.Fatalf("message %d back: %v %q, want %v %q", i+1, typ, data, want.typ, want.data)
				}
			}
		})
	}
}

// A handler returning []byte{} answers with a binary ack carrying an empty
// attachment; a nil []byte is JSON null, as encoding/json has it.
func TestEmptyBinaryAck(t *testing.T) {
	hub := rally.NewHub(nil)
	hub.On("empty", func(s *rally.Socket) []byte { return []byte{} })
	hub.On("nil", func(s *rally.Socket) []byte { return nil })
	srv := sockettest.NewServer(t, hub)
	p := openPoll(t, srv)
	if status, body := p.do("POST", p.q(), "40"); status != 200 || body != "ok" {
		t.Fatalf("CONNECT: %d %q", status, body)
	}
	if _, body := p.do("GET", p.q(), ""); !strings.HasPrefix(body, `40{"sid":"`) {
		t.Fatalf("CONNECT reply %q", body)
	}
	for _, tt := range []struct{ send, want string }{
		{`421["empty"]`, `461-1[{"_placeholder":true,"num":0}]` + "\x1eb"},
		{`422["nil"]`, `432[null]`},
	} {
		if status, body := p.do("POST", p.q(), tt.send); status != 200 || body != "ok" {
			t.Fatalf("POST %s: %d %q", tt.send, status, body)
		}
		if _, body := p.do("GET", p.q(), ""); body != tt.want {
			t.Errorf("%s answered %q, want %q", tt.send, body, tt.want)
		}
	}
}
