package main

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/stdexample/chat"
)

// newServer builds the app without listening: main serves it, tests run
// it on an httptest.Server. The caller shuts the hub down.
//
//	GET  /                           the chat page (index.html, app.js, style.css)
//	GET  /vendor/socket.io.min.js    the official browser client, from npm
//	     /socket.io/*                the Socket.IO endpoint: logging, token check, hub
//	GET  /api/rooms/{room}/users     a room's user list, as JSON
//	POST /api/rooms/{room}/messages  a text/plain announcement to a room (members only)
//	GET  /healthz                    "."
func newServer(cfg chat.Config) (http.Handler, *rally.Hub) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	hub := chat.NewHub(cfg)
	// Values chi's middleware put in the request context reach the
	// sockets through s.Context(): here, the id of the handshake request.
	hub.OnConnect(func(s *rally.Socket) {
		cfg.Logger.Debug("chiexample: socket", "socket", s.ID(), "request_id", middleware.GetReqID(s.Context()))
	})

	r := chi.NewRouter()
	r.Use(middleware.RequestID, middleware.Recoverer, middleware.Heartbeat("/healthz"))

	// The hub is an http.Handler and chat.Authenticate a
	// func(http.Handler) http.Handler: both plug into chi as they are.
	// Keep middleware.Timeout, Compress and the like off this route: a
	// long-poll is held up to the ping interval (25s) and a websocket is
	// a hijacked connection.
	r.With(rally.LogRequests(cfg.Logger), chat.Authenticate(cfg.Token)).Handle("/socket.io/*", hub)

	r.Route("/api", func(r chi.Router) {
		r.Use(middleware.Timeout(5*time.Second), chat.Authenticate(cfg.Token))
		r.Get("/rooms/{room}/users", roomUsers(hub))
		r.With(membersOnly, middleware.AllowContentType("text/plain"), middleware.RequestSize(4<<10)).
			Post("/rooms/{room}/messages", announce(hub))
	})

	r.Get(chat.BundlePath, chat.ClientBundle(cfg.WebDir, cfg.Logger).ServeHTTP)
	r.Handle("/*", chat.Page())
	return r, hub
}

// roomUsers answers a room's user list, read from the hub.
func roomUsers(hub *rally.Hub) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		room := chi.URLParam(r, "room")
		users, err := chat.Users(r.Context(), hub, room)
		if err != nil {
			httpError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, chat.RoomInfo{Room: room, Users: users})
	}
}

// announce posts the request body to a room, from the server.
func announce(hub *rally.Hub) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "reading the body: "+err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		m, err := chat.Announce(hub, chi.URLParam(r, "room"), string(body))
		if err != nil {
			httpError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, m)
	}
}

// membersOnly refuses guests; it runs after chat.Authenticate.
func membersOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !chat.UserFrom(r.Context()).Member {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "members only: send the token as Authorization: Bearer <token>", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// httpError answers a chat error: the client's fault when it is a
// validation error, else the server's.
func httpError(w http.ResponseWriter, err error) {
	var invalid *chat.InvalidError
	if errors.As(err, &invalid) {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
