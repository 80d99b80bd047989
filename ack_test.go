package rally_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/sockettest"
)

// What a handler that takes an Ack answers, on the wire: the official
// socket.io-protocol suite's cases among them.
func TestAckOnTheWire(t *testing.T) {
	hub := rally.NewHub(nil)
	hub.On("echo", func(s *rally.Socket, ack rally.Ack, args ...any) { ack.Send(args...) })
	hub.On("decline", func(s *rally.Socket, ack rally.Ack) {})
	hub.On("typed", func(s *rally.Socket, n int, ack rally.Ack) { ack.Send(n*2, "twice") })
	srv := sockettest.NewServer(t, hub)
	p := openPoll(t, srv)
	p.do("POST", p.q(), "40")
	p.do("GET", p.q(), "")

	cases := []struct {
		name, send, want string
	}{
		{"two arguments", `420["echo","a","b"]`, `430["a","b"]`},
		{"none", `421["echo"]`, `431[]`},
		{"typed, two results", `422["typed",21]`, `432[42,"twice"]`},
		{"binary, two attachments", "452-789[\"echo\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]\x1ebAQI=\x1ebAw==",
			"462-789[{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]\x1ebAQI=\x1ebAw=="},
		{"declined, then answered", "423[\"decline\"]\x1e424[\"echo\",1]", `434[1]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if status, body := p.do("POST", p.q(), tc.send); status != 200 || body != "ok" {
				t.Fatalf("POST: %d %q", status, body)
			}
			if _, body := p.do("GET", p.q(), ""); body != tc.want {
				t.Fatalf("got %q, want %q", body, tc.want)
			}
		})
	}
}

// Ack.Send answers once; later calls, and calls after the disconnect,
// fail without sending anything.
func TestAckSendOnce(t *testing.T) {
	hub := rally.NewHub(nil)
	acks := make(chan rally.Ack, 1)
	hub.On("later", func(s *rally.Socket, ack rally.Ack) { acks <- ack })
	srv := sockettest.NewServer(t, hub)
	c := srv.Dial(t, "/", &client.Options{Transports: []string{client.TransportWebSocket}})

	replies := make(chan rally.Reply, 1)
	go func() {
		r, err := c.EmitWithAck(ctx5s(t), "later")
		if err == nil {
			replies <- r
		}
	}()
	ack := <-acks
	if !ack.Requested() {
		t.Fatal("Requested: false for an event sent with a callback")
	}
	if err := ack.Send("first"); err != nil {
		t.Fatal(err)
	}
	if err := ack.Send("second"); !errors.Is(err, rally.ErrAckSent) {
		t.Fatalf("second Send: %v, want ErrAckSent", err)
	}
	var got string
	if err := (<-replies).Decode(&got); err != nil || got != "first" {
		t.Fatalf("the client got %q (%v)", got, err)
	}

	go c.EmitWithAck(context.Background(), "later")
	ack = <-acks
	id := c.ID()
	c.Close()
	waitUntil(t, "the disconnect", func() bool { return hub.Of("/").Socket(id) == nil })
	if err := ack.Send("too late"); !errors.Is(err, rally.ErrDisconnected) {
		t.Fatalf("Send after the disconnect: %v, want ErrDisconnected", err)
	}
	if err := (rally.Ack{}).Send("nobody asked"); err != nil || (rally.Ack{}).Requested() {
		t.Fatalf("the zero Ack: Send %v, Requested %v", err, (rally.Ack{}).Requested())
	}
}

// Handlers that cannot take an Ack are refused at registration, saying why.
func TestAckHandlerSignatures(t *testing.T) {
	cases := []struct {
		name    string
		handler any
		panics  string
	}{
		{"last", func(*rally.Socket, string, rally.Ack) {}, ""},
		{"before a variadic", func(*rally.Socket, rally.Ack, ...any) {}, ""},
		{"with an error result", func(*rally.Socket, rally.Ack) error { return nil }, ""},
		{"not last", func(*rally.Socket, rally.Ack, string) {}, "must be the last parameter"},
		{"with results", func(*rally.Socket, rally.Ack) string { return "" }, "may return an error, nothing else"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			func() {
				defer func() {
					if r := recover(); r != nil {
						got = fmt.Sprint(r)
					}
				}()
				rally.NewHub(nil).On("e", tc.handler)
			}()
			if (tc.panics == "") != (got == "") || !strings.Contains(got, tc.panics) {
				t.Fatalf("On panicked with %q, want %q", got, tc.panics)
			}
		})
	}
}

// A handler answers later, from a goroutine of its own: the events after
// it are handled meanwhile.
func ExampleAck() {
	hub := rally.NewHub(nil)
	hub.On("slow", func(s *rally.Socket, ms int, ack rally.Ack) {
		go func() {
			time.Sleep(time.Duration(ms) * time.Millisecond)
			ack.Send(fmt.Sprintf("slept %d ms", ms))
		}()
	})
	hub.On("echo", func(s *rally.Socket, ack rally.Ack, args ...any) { ack.Send(args...) })
	srv := httptest.NewServer(hub)
	defer srv.Close()
	defer hub.Close()

	c := client.New(srv.URL, nil)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		fmt.Println(err)
		return
	}
	done := make(chan string)
	go func() {
		r, _ := c.EmitWithAck(ctx, "slow", 200)
		var s string
		r.Decode(&s)
		done <- s
	}()
	time.Sleep(20 * time.Millisecond) // "slow" goes first
	r, _ := c.EmitWithAck(ctx, "echo", "a", "b", "c")
	fmt.Println(r.Len(), "arguments back at once")
	fmt.Println(<-done)
	// Output:
	// 3 arguments back at once
	// slept 200 ms
}
