package rally_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/sockettest"
)

// streamer emits numbered events until the connection has been on
// websocket for `after` more events, then reports how many it sent on
// polling and in all. Past the first few thousand it slows down to one
// event per 100 µs, so that what the upgrade takes does not turn into a
// flood the other side needs long to read.
func stream(emit func(i int) error, transport func() string, after int) (onPolling, total int) {
	sinceUpgrade := -1
	for i := 0; ; i++ {
		if err := emit(i); err != nil {
			return onPolling, i
		}
		if i >= 5000 {
			time.Sleep(100 * time.Microsecond)
		}
		if transport() == rally.TransportWebSocket {
			sinceUpgrade++
		} else {
			onPolling = i + 1
		}
		if sinceUpgrade >= after {
			return onPolling, i + 1
		}
	}
}

// TestNoLossAcrossUpgrade streams numbered messages both ways while the
// connection moves from polling to websocket: every message arrives once,
// in order.
func TestNoLossAcrossUpgrade(t *testing.T) {
	for range 3 {
		hub := rally.NewHub(nil)
		// Hold the websocket upgrade until both sides are streaming, so the
		// switch happens mid-stream.
		streaming := make(chan struct{})
		var started sync.WaitGroup
		started.Add(2)
		go func() { started.Wait(); close(streaming) }()
		var mu sync.Mutex
		var got []int
		hub.On("up", func(s *rally.Socket, i int) {
			mu.Lock()
			got = append(got, i)
			mu.Unlock()
		})
		sent := make(chan [2]int, 1)
		hub.OnConnect(func(s *rally.Socket) {
			go func() {
				polling, total := stream(func(i int) error {
					if i == 100 {
						started.Done()
					}
					return s.Emit("down", i)
				}, s.Transport, 200)
				sent <- [2]int{polling, total}
			}()
		})
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("transport") == rally.TransportWebSocket {
				select {
				case <-streaming:
				case <-time.After(5 * time.Second):
				}
			}
			hub.ServeHTTP(w, r)
		}))
		c := client.New(ts.URL, nil)
		events := sockettest.Record(c)
		if err := c.Connect(ctx5s(t)); err != nil {
			t.Fatal(err)
		}
		if c.Transport() != client.TransportPolling {
			t.Fatalf("connected on %q, want polling first", c.Transport())
		}
		upPolling, upTotal := stream(func(i int) error {
			if i == 100 {
				started.Done()
			}
			return c.Emit("up", i)
		}, c.Transport, 200)
		down := <-sent

		for i := range down[1] {
			var n int
			events.Expect(t, "down", &n)
			if n != i {
				t.Fatalf("server to client: message %d arrived as number %d", i, n)
			}
		}
		if _, err := c.EmitWithAck(ctx5s(t), "up", upTotal); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		for i, n := range got[:upTotal] {
			if n != i {
				mu.Unlock()
				t.Fatalf("client to server: message %d arrived as number %d", i, n)
			}
		}
		if len(got) != upTotal+1 {
			t.Fatalf("server got %d messages, want %d", len(got), upTotal+1)
		}
		mu.Unlock()
		if upPolling == 0 || down[0] == 0 {
			t.Fatalf("no message sent on polling (client %d, server %d): the stream did not span the upgrade", upPolling, down[0])
		}
		t.Logf("client sent %d (%d on polling), server sent %d (%d on polling)", upTotal, upPolling, down[1], down[0])
		c.Close()
		hub.Close()
		ts.Close()
	}
}
