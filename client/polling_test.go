package client_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/sockettest"
)

// TestPollingPostsFitMaxPayload queues far more than the server's
// maxPayload while a POST is in flight: the client splits what it sends
// into payloads the server accepts, and every event arrives in order.
func TestPollingPostsFitMaxPayload(t *testing.T) {
	const limit, events = 2000, 400
	hub := rally.NewHub(&rally.Options{MaxHTTPBufferSize: limit})
	var mu sync.Mutex
	var got []int
	all := make(chan struct{})
	hub.On("n", func(s *rally.Socket, i int, pad string) {
		mu.Lock()
		defer mu.Unlock()
		if got = append(got, i); len(got) == events {
			close(all)
		}
	})
	srv := sockettest.NewServer(t, hub)
	c := srv.Dial(t, "/", &client.Options{Transports: []string{client.TransportPolling}})
	pad := strings.Repeat("x", 40)
	for i := range events {
		if err := c.Emit("n", i, pad); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case <-all:
	case <-c.Done():
		t.Fatalf("client disconnected: %s", c.Reason())
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%d of %d events arrived", len(got), events)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, n := range got {
		if n != i {
			t.Fatalf("event %d arrived as %d", i, n)
		}
	}
}
