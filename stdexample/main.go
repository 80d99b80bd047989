// Command stdexample is a chat server built on rally with nothing but
// net/http: nicknames, rooms with their user lists, text and binary
// messages, a token checked by handshake and connect middleware, request
// logging with slog, an http.Server set for the internet
// (chat.NewHTTPServer) and a graceful shutdown. The chat itself is the
// chat package beside it, which chiexample shares; server.go routes to it.
//
// Run it from the repository root; the first command installs the
// official Socket.IO browser client that the page loads from this server:
//
//	npm ci --prefix stdexample/chat/web
//	go run ./stdexample
//
// Then open http://localhost:3000/?token=demo in two browser windows:
// with the token (also typed in the page's Token field) you join as a
// member; without one, as a guest, unless -require-token is set. A wrong
// token is refused.
//
// Clients from the Socket.IO documentation work as they are, in Node or a
// browser; sending no token, they connect as guests:
//
//	const socket = io('ws://localhost:3000');
//	socket.on('connect', () => {
//	  socket.send('Hello!');
//	  socket.emit('salutations', 'Hello!', { 'mr': 'john' }, Uint8Array.from([1, 2, 3, 4]));
//	});
//	socket.on('message', data => console.log(data));          // Hello! (echoed)
//	socket.on('greetings', (a, b, c) => console.log(a, b, c)); // Hey! { ms: 'jane' } <04 03 02 01>
//
// Several instances serve one chat when they share a Redis server: start
// each with -redis and its own -addr, and clients of either see the same
// rooms, users and messages:
//
//	go run ./stdexample -addr :3000 -redis localhost:6379
//	go run ./stdexample -addr :3001 -redis localhost:6379
//
// Flags: -addr (":3000"), -token ("demo"), -require-token, -web (the
// directory of the page's package.json), -redis (host:port).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/rallyhq/rally/stdexample/chat"
)

func main() {
	cfg := chat.ParseFlags()
	if cfg.Redis != "" {
		_, closeRedis := chat.UseRedis(&cfg)
		defer closeRedis()
	}

	// SIGINT (Ctrl-C) or SIGTERM ends ctx; ListenAndServe then shuts the
	// hub and the HTTP server down gracefully.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	handler, hub := newServer(cfg)
	handler = chat.WithMetrics(handler, hub)           // GET /metrics, for Prometheus
	handler = chat.WithAdmin(handler, hub, cfg.Logger) // the admin UI, with ADMIN_PASSWORD set
	if err := chat.ListenAndServe(ctx, cfg, handler, hub); err != nil {
		cfg.Logger.Error("stdexample", "error", err)
		os.Exit(1)
	}
}
