package engineio

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// requestError is one of the errors the official server answers an engine
// request with.
type requestError struct {
	code    int
	message string
}

var (
	errTransportUnknown   = &requestError{0, "Transport unknown"}
	errSessionUnknown     = &requestError{1, "Session ID unknown"}
	errBadHandshakeMethod = &requestError{2, "Bad handshake method"}
	errBadRequest         = &requestError{3, "Bad request"}
	errForbidden          = &requestError{4, "Forbidden"}
	errUnsupportedVersion = &requestError{5, "Unsupported protocol version"}
)

func (e *requestError) Error() string { return e.message }

// writeHTTP answers a polling or plain HTTP request: JSON body, 400 (403 for
// Forbidden).
func (e *requestError) writeHTTP(w http.ResponseWriter, message string) {
	status := http.StatusBadRequest
	if e.code == errForbidden.code {
		status = http.StatusForbidden
	}
	body, _ := json.Marshal(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{e.code, message})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// writeUpgrade answers a websocket upgrade request before the upgrade: always
// 400, the message as an HTML body, and the connection closed.
func (e *requestError) writeUpgrade(w http.ResponseWriter, message string) {
	w.Header().Set("Content-Type", "text/html")
	w.Header().Set("Content-Length", strconv.Itoa(len(message)))
	w.Header().Set("Connection", "close")
	w.WriteHeader(http.StatusBadRequest)
	w.Write([]byte(message))
}
