package client_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
)

// A connection the server closes is reopened by itself, after the
// backoff's delay, and the socket joins its namespace again.
func ExampleOptions_reconnection() {
	hub := rally.NewHub(nil)
	hub.On("drop me", func(s *rally.Socket) { s.CloseConnection() })
	srv := httptest.NewServer(hub)
	defer srv.Close()
	defer hub.Close()

	m, err := client.NewManager(srv.URL, &client.Options{
		ReconnectionAttempts: 10,                     // then OnReconnectFailed, and the sockets end
		ReconnectionDelay:    100 * time.Millisecond, // doubled at each attempt...
		ReconnectionDelayMax: 2 * time.Second,        // ...up to this
		RandomizationFactor:  client.NoRandomization, // exact delays (0 means ±50%)
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	reconnected := make(chan int, 1)
	m.OnReconnect(func(attempt int) { reconnected <- attempt })
	s := m.Socket("/")
	connects, disconnects := make(chan string, 2), make(chan string, 1)
	s.OnConnect(func() { connects <- s.ID() })
	s.OnDisconnect(func(reason string) { disconnects <- reason })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Connect(ctx); err != nil {
		fmt.Println(err)
		return
	}
	first := <-connects
	s.Emit("drop me")
	fmt.Println("disconnected:", <-disconnects)
	fmt.Println("reconnected at attempt", <-reconnected)
	second := <-connects
	fmt.Println("connected again:", s.Connected(), "with a new id:", second != first)
	// Output:
	// disconnected: transport close
	// reconnected at attempt 1
	// connected again: true with a new id: true
}
