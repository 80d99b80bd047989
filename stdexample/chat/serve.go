package chat

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/redisadapter"
	"github.com/redis/go-redis/v9"
)

// ParseFlags reads the apps' command line into a Config, with a text
// logger on stderr:
//
//	-addr           listen address (":3000")
//	-token          the members' token ("demo"); "" makes everyone a guest
//	-require-token  refuse guests
//	-web            directory of the page's package.json (DefaultWebDir)
//	-redis          address of a Redis server shared with other instances
func ParseFlags() Config {
	cfg := Config{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	flag.StringVar(&cfg.Addr, "addr", ":3000", "listen address")
	flag.StringVar(&cfg.Token, "token", "demo", `the members' token; "" makes everyone a guest`)
	flag.BoolVar(&cfg.RequireToken, "require-token", false, "refuse clients without a valid token")
	flag.StringVar(&cfg.WebDir, "web", DefaultWebDir(), "directory of the page's package.json, where npm installs socket.io-client")
	flag.StringVar(&cfg.Redis, "redis", "", "address of a Redis server shared by several instances (host:port)")
	flag.Parse()
	return cfg
}

// UseRedis makes the chat share its rooms and messages with the other
// instances that use the Redis server at cfg.Redis: it sets cfg.Adapter to
// rally's Redis adapter. It returns the adapter's node (node.Ready tells
// when the hub's subscriptions are in place) and a function that closes
// the Redis client, to call after the hub has shut down.
func UseRedis(cfg *Config) (node *redisadapter.Node, closeRedis func() error) {
	client := redis.NewClient(&redis.Options{Addr: cfg.Redis})
	node = redisadapter.New(client, &redisadapter.Options{Logger: logger(*cfg)})
	cfg.Adapter = node.Adapter
	logger(*cfg).Info("chat: sharing rooms through Redis", "redis", cfg.Redis)
	return node, client.Close
}

// ShutdownTimeout bounds a graceful shutdown.
const ShutdownTimeout = 5 * time.Second

// ListenAndServe serves handler, which routes Socket.IO requests to hub,
// on cfg.Addr until ctx ends, then shuts down gracefully. See Serve.
func ListenAndServe(ctx context.Context, cfg Config, handler http.Handler, hub *rally.Hub) error {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		hub.Close()
		return err
	}
	page := "http://" + ln.Addr().String() + "/"
	if _, port, err := net.SplitHostPort(ln.Addr().String()); err == nil {
		page = "http://localhost:" + port + "/"
	}
	if cfg.Token != "" {
		page += "?token=" + cfg.Token
	}
	logger(cfg).Info("chat: listening", "addr", ln.Addr().String(), "page", page)
	return Serve(ctx, ln, handler, hub, logger(cfg))
}

// Serve serves handler on ln with an http.Server from NewHTTPServer
// until ctx ends — the apps end it on SIGINT or SIGTERM — then shuts
// down gracefully:
//
//  1. hub.Shutdown refuses new Socket.IO connections, disconnects every
//     socket (clients see "transport close" and reconnect by themselves,
//     to this server when it is back), answers the pending long-polls and
//     closes the websockets once what is queued for them is written;
//  2. http.Server.Shutdown then stops accepting and waits for the
//     requests in flight. It comes second because it neither answers
//     long-polls (it would wait up to a ping interval for each) nor
//     tracks websockets (hijacked connections).
//
// Both share ShutdownTimeout. Serve returns nil after a clean shutdown,
// and shuts the hub down in every case.
func Serve(ctx context.Context, ln net.Listener, handler http.Handler, hub *rally.Hub, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	srv := NewHTTPServer(handler, log)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		hub.Close()
		return err // could not serve
	case <-ctx.Done():
	}

	log.Info("chat: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	hubErr := hub.Shutdown(sctx)
	srvErr := srv.Shutdown(sctx)
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		srvErr = errors.Join(srvErr, err)
	}
	if err := errors.Join(hubErr, srvErr); err != nil {
		return err
	}
	log.Info("chat: stopped")
	return nil
}

// NewHTTPServer returns the http.Server that Serve serves handler with,
// set for the internet. Its errors go to log (slog.Default() when nil)
// at warn level.
func NewHTTPServer(handler http.Handler, log *slog.Logger) *http.Server {
	if log == nil {
		log = slog.Default()
	}
	return &http.Server{
		Handler: handler,
		// A client has 10s to send its request headers, so that one
		// trickling them in byte by byte (slowloris) cannot hold a
		// connection open for long; net/http sets no limit of its own.
		ReadHeaderTimeout: 10 * time.Second,
		// Request headers are bounded as in Node, 16 KiB instead of Go's
		// 1 MiB; larger get 431 Request Header Fields Too Large
		// (net/http reads up to 4 KiB past the bound before refusing).
		MaxHeaderBytes: 16 << 10,
		// A keep-alive connection waiting for its next request is closed
		// after 2 minutes, instead of never.
		IdleTimeout: 120 * time.Second,
		// No WriteTimeout: it bounds a whole response from the end of its
		// request's headers, and a long-poll GET is held for up to the
		// ping interval (25s); shorter, the poll's answer is never
		// written and the client waits for its session to time out. No
		// ReadTimeout either: it bounds a whole request, body included,
		// so it would have to allow for a 1 MB POST over the slowest
		// link; ReadHeaderTimeout already stops slowloris. Websockets are
		// not concerned: rally clears the server's deadlines when it
		// takes their connection over.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

func logger(cfg Config) *slog.Logger {
	if cfg.Logger != nil {
		return cfg.Logger
	}
	return slog.Default()
}
