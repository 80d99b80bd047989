package rally_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/sockettest"
)

// settle waits until the goroutine count stops falling, and returns it
// with the heap in use after a GC. Idle keep-alive connections of the
// clients' HTTP transport (and their server side) are closed first.
func settle() (goroutines int, heap uint64) {
	http.DefaultClient.CloseIdleConnections()
	prev := -1
	for range 50 {
		runtime.GC()
		n := runtime.NumGoroutine()
		if n == prev {
			break
		}
		prev = n
		time.Sleep(50 * time.Millisecond)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return prev, ms.HeapInuse
}

// TestChurn connects and disconnects many clients over both transports,
// with rooms joined and acks in flight, and checks that the server's
// goroutines and heap return to where they were.
func TestChurn(t *testing.T) {
	total, concurrent := 1000, 25
	if testing.Short() {
		total = 200
	}
	hub := rally.NewHub(nil)
	hub.On("join", func(s *rally.Socket, room string) { s.Join(room) })
	hub.On("work", func(s *rally.Socket, n int) int {
		s.To(fmt.Sprint("room", n%7)).Emit("busy", n)
		return n * 2
	})
	hub.OnConnect(func(s *rally.Socket) {
		// A server-side ack the client may never get to answer.
		go func() {
			ctx, cancel := context.WithTimeout(s.Context(), 50*time.Millisecond)
			defer cancel()
			s.EmitWithAck(ctx, "ping")
		}()
	})
	srv := sockettest.NewServer(t, hub)

	warm := srv.Dial(t, "/", nil) // so the baseline includes the server's own state
	warm.Close()
	baseGoroutines, baseHeap := settle()

	transports := [][]string{{client.TransportWebSocket}, {client.TransportPolling}, nil}
	sem := make(chan struct{}, concurrent)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	for i := range total {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c := client.New(srv.URL, &client.Options{Transports: transports[i%len(transports)], DisableReconnection: true})
			c.On("ping", func() string { return "pong" })
			err := c.Connect(ctx)
			if err == nil {
				err = c.Emit("join", fmt.Sprint("room", i%7))
			}
			if err == nil && i%2 == 0 {
				_, err = c.EmitWithAck(ctx, "work", i)
			}
			if err == nil {
				c.Emit("work", i) // in flight when the client leaves
			}
			c.Close()
			if err != nil {
				mu.Lock()
				failures = append(failures, fmt.Errorf("client %d (%v, now %q): %w", i, transports[i%len(transports)], c.Transport(), err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d clients failed, first: %v", len(failures), total, failures[0])
	}

	deadline := time.Now().Add(10 * time.Second)
	for {
		socks, _ := hub.All().FetchSockets(ctx5s(t))
		if len(socks) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sockets still connected", len(socks))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Pooled goroutines outlive their work by the pools' idle time (5s).
	goroutines, heap := settle()
	for deadline := time.Now().Add(15 * time.Second); goroutines > baseGoroutines+5 && time.Now().Before(deadline); {
		time.Sleep(250 * time.Millisecond)
		goroutines, heap = settle()
	}
	t.Logf("%d clients: goroutines %d → %d, heap in use %d KiB → %d KiB", total, baseGoroutines, goroutines, baseHeap>>10, heap>>10)
	if goroutines > baseGoroutines+5 {
		t.Errorf("goroutines did not return to baseline: %d, was %d", goroutines, baseGoroutines)
	}
	if heap > baseHeap+8<<20 {
		t.Errorf("heap in use grew by %d KiB", (heap-baseHeap)>>10)
	}
}

// TestConcurrentOperations runs emits, broadcasts, joins, leaves, fetches
// and disconnects from many goroutines at once; run it with -race.
func TestConcurrentOperations(t *testing.T) {
	hub := rally.NewHub(nil)
	hub.On("check", func(s *rally.Socket) string { return "ok" })
	srv := sockettest.NewServer(t, hub)
	var clients []*client.Socket
	for i := range 20 {
		c := srv.Socket(t, "/", &client.Options{Transports: [][]string{{client.TransportWebSocket}, {client.TransportPolling}}[i%2], DisableReconnection: true})
		c.On("q", func(n int) int { return n })
		srv.Connect(t, c)
		clients = append(clients, c)
	}
	rooms := []string{"a", "b", "c", "d"}
	var wg sync.WaitGroup
	stop := time.Now().Add(time.Second)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for time.Now().Before(stop) {
				socks, err := hub.All().FetchSockets(context.Background())
				if err != nil || len(socks) == 0 {
					continue
				}
				s := hub.Of("/").Socket(socks[r.IntN(len(socks))].ID)
				if s == nil {
					continue
				}
				room := rooms[r.IntN(len(rooms))]
				switch r.IntN(8) {
				case 0:
					s.Join(room)
				case 1:
					s.Leave(room)
				case 2:
					hub.To(room).Except(rooms[r.IntN(len(rooms))]).Emit("news", g)
				case 3:
					s.Broadcast().Emit("news", g)
				case 4:
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
					hub.To(room).EmitWithAck(ctx, "q", g)
					cancel()
				case 5:
					hub.In(room).SocketsJoin(rooms[r.IntN(len(rooms))])
				case 6:
					if r.IntN(20) == 0 {
						s.Disconnect(r.IntN(2) == 0)
					}
				case 7:
					s.Emit("news", g)
				}
			}
		}()
	}
	wg.Wait()

	// Every connected client still works, and the server's view matches.
	socks, _ := hub.All().FetchSockets(ctx5s(t))
	connected := 0
	for _, c := range clients {
		if !c.Connected() {
			continue
		}
		connected++
		r, err := c.EmitWithAck(ctx5s(t), "check")
		if r.Len() != 1 || err != nil {
			t.Fatalf("client %s: %v %v", c.ID(), r, err)
		}
	}
	if len(socks) != connected {
		t.Fatalf("server sees %d sockets, %d clients connected", len(socks), connected)
	}
}
