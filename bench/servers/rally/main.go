// Command rally is the rally peer of the benchmark harness: a Hub with the
// contract's handlers (see bench/README.md). With -recovery it turns
// connection state recovery on, with its defaults; with -parser msgpack it
// speaks socket.io-msgpack-parser's format (msgpackparser.Parser); with
// -redis URL it shares broadcasts with other servers through the classic
// Redis adapter (redisadapter).
package main

import (
	"io"
	"log"
	"log/slog"
	"sync/atomic"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/bench/internal/serverkit"
	"github.com/rallyhq/rally/msgpackparser"
)

func main() {
	var clients atomic.Int64
	opts := &rally.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if serverkit.Recovery() {
		opts.ConnectionStateRecovery = &rally.Recovery{}
	}
	if serverkit.ParserName() == "msgpack" {
		opts.Parser = msgpackparser.Parser{}
	}
	node, err := redisNode()
	if err != nil {
		log.Fatalf("rally: %v", err)
	}
	withRedis(opts, node)
	hub := rally.NewHub(opts)
	waitRedis(node)
	hub.OnConnect(func(s *rally.Socket) { clients.Add(1) })
	hub.OnDisconnect(func(s *rally.Socket, reason string) { clients.Add(-1) })
	hub.On("echo", func(s *rally.Socket, m serverkit.Echo) serverkit.Echo { return m })
	hub.On("blast", func(s *rally.Socket, b serverkit.Blast) {
		pad := serverkit.Pad(b.Pad)
		for i := range b.N {
			hub.Emit("tick", serverkit.Tick{T: serverkit.NowMicros(), I: b.From + i, P: pad})
		}
	})
	serverkit.Run(serverkit.Server{
		Name:     "rally",
		Module:   "github.com/rallyhq/rally",
		Handler:  hub,
		Clients:  clients.Load,
		Recovery: true,
		Msgpack:  true,
		Redis:    node != nil,
	})
}
