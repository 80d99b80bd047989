package rally

import "github.com/rallyhq/rally/internal/callback"

// Errors raised while serving sockets go to Options.OnError, which gets
// every one of them with all its details. Without OnError they are logged
// at warning level, and the log line is bounded whatever the client sent:
// encoding/json's errors and UnmarshalJSON methods may quote an argument
// of up to MaxHTTPBufferSize bytes, and a handler's panic value or error
// may hold anything.

// maxLoggedError bounds the error text of a line the default error report
// logs.
const maxLoggedError = 512

// reportError hands an error raised while serving s (nil when there is no
// socket, as for a malformed packet) to Options.OnError, or else logs it
// with its text cut to maxLoggedError bytes.
func (h *Hub) reportError(s *Socket, err error) {
	if h.opts.OnError != nil {
		h.opts.OnError(s, err)
		return
	}
	attrs := []any{"error", callback.Clip(err.Error(), maxLoggedError)}
	if s != nil {
		attrs = append(attrs, "namespace", s.nsp.name, "socket", s.id)
	}
	h.log.Warn("rally: socket error", attrs...)
}
