package main

import (
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/stdexample/chat"
)

// newServer builds the app without listening: main serves it, tests run
// it on an httptest.Server. The caller shuts the hub down.
//
//	GET /                         the chat page (index.html, app.js, style.css)
//	GET /vendor/socket.io.min.js  the official browser client, from npm
//	    /socket.io/               the Socket.IO endpoint: logging, token check, hub
func newServer(cfg chat.Config) (http.Handler, *rally.Hub) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.GenerateID == nil {
		cfg.GenerateID = sessionID
	}
	hub := chat.NewHub(cfg)

	mux := http.NewServeMux()
	// Handshake middleware wraps the hub like any net/http handler. The
	// logger goes outside, so that refused handshakes are logged too.
	mux.Handle("/socket.io/", rally.LogRequests(cfg.Logger)(chat.Authenticate(cfg.Token)(hub)))
	mux.Handle("GET "+chat.BundlePath, chat.ClientBundle(cfg.WebDir, cfg.Logger))
	mux.Handle("/", chat.Page())
	return mux, hub
}

// sessionID names each engine session (the sid of the client's requests,
// which the request log prints at debug level) with a random UUID, for
// log and trace tools that expect one; socket ids stay rally's own. Like
// the default id it is drawn from crypto/rand (version 4): a sid is a
// secret, whoever knows it can poll as its client.
func sessionID(*http.Request) string { return uuid.NewString() }
