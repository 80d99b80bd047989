// Command chiexample is the chat of stdexample served through the chi
// router: the same chat package (stdexample/chat) and page, mounted with
// chi's routing and middleware, plus a small JSON API that reaches the
// hub from ordinary HTTP handlers. server.go is the part to read.
//
// Run it from the repository root; the first command installs the
// official Socket.IO browser client that the page loads from this server:
//
//	npm ci --prefix stdexample/chat/web
//	go run ./chiexample
//
// Then open http://localhost:3000/?token=demo in two browser windows, and
// try the API:
//
//	curl localhost:3000/api/rooms/lobby/users
//	curl -H 'Authorization: Bearer demo' -H 'Content-Type: text/plain' \
//	     -d 'Hello from curl' localhost:3000/api/rooms/lobby/messages
//
// Flags: -addr (":3000"), -token ("demo"), -require-token, -web (the
// directory of the page's package.json).
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	handler, hub := newServer(cfg)
	handler = chat.WithMetrics(handler, hub)           // GET /metrics, for Prometheus
	handler = chat.WithAdmin(handler, hub, cfg.Logger) // the admin UI, with ADMIN_PASSWORD set
	if err := chat.ListenAndServe(ctx, cfg, handler, hub); err != nil {
		cfg.Logger.Error("chiexample", "error", err)
		os.Exit(1)
	}
}
