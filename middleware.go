package rally

import (
	"bufio"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// LogRequests returns HTTP middleware that logs every Engine.IO request
// the hub serves (handshakes, polls, upgrades) to logger at info level:
// method, transport, remote address, status, bytes written and duration.
// A websocket is logged once, when it closes, with status 101 and the
// connection's lifetime as duration. Wrap it around the Hub like any
// net/http middleware:
//
//	http.Handle("/socket.io/", rally.LogRequests(logger)(hub))
//
// The session id (the sid query parameter) is not on that line: it is
// all a client needs to poll and post on a session, a bearer credential
// like a session cookie, and info-level logs are kept and shipped where
// credentials should not go. When logger is enabled for debug level, a
// request that names a session is logged a second time, at debug level,
// as "rally: session request" with the same attributes and the sid, to
// follow one session through the logs.
func LogRequests(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := &statusRecorder{ResponseWriter: w}
			next.ServeHTTP(rec, r)
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			q := r.URL.Query()
			ctx := r.Context()
			attrs := [...]slog.Attr{
				slog.String("method", r.Method),
				slog.String("transport", q.Get("transport")),
				slog.String("remote", r.RemoteAddr),
				slog.Int("status", status),
				slog.Int64("bytes", rec.bytes),
				slog.Duration("duration", time.Since(start)),
				{}, // the sid, at debug level only
			}
			logger.LogAttrs(ctx, slog.LevelInfo, "rally: request", attrs[:len(attrs)-1]...)
			if sid := q.Get("sid"); sid != "" && logger.Enabled(ctx, slog.LevelDebug) {
				attrs[len(attrs)-1] = slog.String("sid", sid)
				logger.LogAttrs(ctx, slog.LevelDebug, "rally: session request", attrs[:]...)
			}
		})
	}
}

// statusRecorder records the status and size of a response. It passes
// Flush and Hijack through so long-polling and websockets keep working.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if r.status == 0 {
		r.status = http.StatusSwitchingProtocols
	}
	return http.NewResponseController(r.ResponseWriter).Hijack()
}

// Unwrap returns the wrapped ResponseWriter, for http.ResponseController.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
