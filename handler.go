package rally

// The http.Handler: where an HTTP request enters the hub. The engine
// (internal/engineio) routes it: a handshake opens an engine session, whose
// conn (conn.go) the hub creates; polling GETs and POSTs and websocket
// upgrades name an open session by its sid. Origins are checked and CORS
// headers set there too, on every request (Options.AllowedOrigins).

import "net/http"

// ServeHTTP serves the Engine.IO requests of Socket.IO clients: handshakes,
// long-polling requests and websocket upgrades. Whatever the path, every
// request is taken as an engine request, so mount the Hub on the path
// clients use ("/socket.io/" unless their path option says otherwise).
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.engine.ServeHTTP(w, r)
}
