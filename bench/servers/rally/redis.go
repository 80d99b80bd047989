package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/bench/internal/serverkit"
	"github.com/rallyhq/rally/redisadapter"
	"github.com/redis/go-redis/v9"
)

// redisNode returns the classic Redis adapter on the -redis URL, or nil
// when -redis is not given. The caller passes it to withRedis and calls
// waitRedis before serving.
func redisNode() (*redisadapter.Node, error) {
	url := serverkit.RedisURL()
	if url == "" {
		return nil, nil
	}
	ro, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("-redis %q: %w", url, err)
	}
	return redisadapter.New(redis.NewClient(ro), nil), nil
}

// waitRedis waits until Redis confirmed the adapter's subscriptions, so
// that the server is counted and hears the others as soon as it serves.
func waitRedis(node *redisadapter.Node) {
	if node == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := node.Ready(ctx); err != nil {
		log.Fatalf("rally: Redis adapter on %s not ready: %v", serverkit.RedisURL(), err)
	}
}

// withRedis sets opts.Adapter to node's when there is one.
func withRedis(opts *rally.Options, node *redisadapter.Node) {
	if node != nil {
		opts.Adapter = node.Adapter
	}
}
