package streams_test

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/redisadapter/streams"
	"github.com/redis/go-redis/v9"
)

// Several servers, rally or Node (@socket.io/redis-streams-adapter), share
// one Redis stream; with connection state recovery a client that lost its
// connection recovers its socket on whichever server it reaches next.
func ExampleNew() {
	client := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	node := streams.New(client, nil) // nil: every default, as Node's
	hub := rally.NewHub(&rally.Options{
		Adapter:                 node.Adapter,
		ConnectionStateRecovery: &rally.Recovery{MaxDisconnectionDuration: 2 * time.Minute},
	})
	hub.OnConnect(func(s *rally.Socket) {
		if s.Recovered() {
			return // same id, rooms and data; the missed events were sent
		}
		s.Join("lobby")
	})
	hub.On("say", func(s *rally.Socket, text string) {
		s.To("lobby").Emit("said", s.ID(), text) // kept in the stream, with its offset
	})

	http.Handle("/socket.io/", hub)
	go http.ListenAndServe(":3000", nil)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := node.Ready(ctx); err != nil {
		log.Fatal(err)
	}
	n, err := node.ServerCount(ctx, "/")
	log.Println(n, err)
}
