package redisadapter_test

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/redisadapter"
	"github.com/redis/go-redis/v9"
)

// Several servers, rally or Node, share rooms and broadcasts through one
// Redis.
func ExampleNew() {
	client := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	node := redisadapter.New(client, &redisadapter.Options{RequestsTimeout: 3 * time.Second})
	hub := rally.NewHub(&rally.Options{Adapter: node.Adapter})
	hub.On("join", func(s *rally.Socket, room string) { s.Join(room) })
	hub.On("say", func(s *rally.Socket, room, text string) {
		// Reaches the room's sockets on every server.
		s.To(room).Emit("said", s.ID(), text)
	})
	hub.OnServerEvent("load", func() int { return 42 })

	http.Handle("/socket.io/", hub)
	go http.ListenAndServe(":3000", nil)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := node.Ready(ctx); err != nil {
		log.Fatal(err)
	}
	// One answer per other server.
	loads, err := hub.ServerSideEmitWithAck(ctx, "load")
	log.Println(len(loads), err)
}

// A process that serves no clients sends to those of every server.
func ExampleNewEmitter() {
	client := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	emitter := redisadapter.NewEmitter(client, nil)
	ctx := context.Background()
	if err := emitter.To("room1").Except("muted").Emit(ctx, "news", "hello", []byte{1, 2, 3}); err != nil {
		log.Fatal(err)
	}
	if err := emitter.Of("/admin").SocketsJoin(ctx, "alerts"); err != nil {
		log.Fatal(err)
	}
}
