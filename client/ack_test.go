package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/sockettest"
)

// A client handler that takes an Ack answers the server's EmitWithAck with
// any number of arguments, later, from another goroutine, and knows
// whether an answer was asked for.
func TestClientAck(t *testing.T) {
	hub := rally.NewHub(nil)
	srv := sockettest.NewServer(t, hub)
	c := srv.Socket(t, "/", nil)
	requested := make(chan bool, 2)
	again := make(chan error, 1)
	c.On("later", func(n int, ack client.Ack) {
		requested <- ack.Requested()
		if !ack.Requested() {
			return
		}
		go func() {
			time.Sleep(50 * time.Millisecond)
			ack.Send(n, n*2, []byte{7})
			again <- ack.Send("again")
		}()
	})
	c.On("fail", func(ack client.Ack) error { return errors.New("no way") })
	connected := make(chan *rally.Socket, 1)
	hub.OnConnect(func(s *rally.Socket) { connected <- s })
	srv.Connect(t, c)
	s := <-connected

	s.Emit("later", 1)
	if <-requested {
		t.Fatal("Requested: true for an event sent without ack")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := s.EmitWithAck(ctx, "later", 21)
	if !<-requested {
		t.Fatal("Requested: false for an event sent with ack")
	}
	var a, b int
	var bin []byte
	if err != nil || r.Len() != 3 || r.Decode(&a, &b, &bin) != nil || a != 21 || b != 42 || len(bin) != 1 || bin[0] != 7 {
		t.Fatalf("ack %v %v: %d %d %v", r.Values(), err, a, b, bin)
	}
	if err := <-again; !errors.Is(err, rally.ErrAckSent) {
		t.Fatalf("second Send: %v, want ErrAckSent", err)
	}
	_, err = s.EmitWithAck(ctx, "fail")
	var ae *rally.AckError
	if !errors.As(err, &ae) || ae.Message != "no way" {
		t.Fatalf("failing handler: %v", err)
	}
}
