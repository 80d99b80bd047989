package sharded_test

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/redisadapter/sharded"
	"github.com/redis/go-redis/v9"
)

// Several servers, rally or Node (createShardedAdapter), share a Redis
// Cluster through sharded pub/sub; a broadcast to one room travels on the
// room's channel, to the servers with sockets in it only.
func ExampleNew() {
	client := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"},
	})
	node := sharded.New(client, nil) // nil: every default, as Node's
	hub := rally.NewHub(&rally.Options{Adapter: node.Adapter})
	hub.Observe(node.Observer()) // subscribe to a room's channel when it gets its first socket
	hub.OnConnect(func(s *rally.Socket) { s.Join("lobby") })
	hub.On("say", func(s *rally.Socket, text string) {
		s.To("lobby").Emit("said", s.ID(), text) // on socket.io#/#lobby#
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
