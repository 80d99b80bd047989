package rally

import (
	"sync"
	"time"

	"github.com/rallyhq/rally/internal/callback"
)

// Errors raised while serving sockets go to Options.OnError, which gets
// every one of them, not rate-limited, with all its details. Without
// OnError they are logged at warning level, and what a client can make
// the server log is bounded:
//
//   - each line's error text is cut to maxLoggedError bytes, since
//     encoding/json's errors and UnmarshalJSON methods may quote an
//     argument of up to MaxHTTPBufferSize bytes, and a handler's panic
//     value or error may hold anything;
//   - each socket has a budget of errorBurst lines, growing back by one
//     every errorInterval; the errors beyond it are counted, not logged,
//     and the next line logged for the socket says how many with a
//     "suppressed" attribute. Errors without a socket (malformed packets,
//     which close their connection, and failing server-side events) share
//     one such budget per hub.

// maxLoggedError bounds the error text of a line the default error report
// logs.
const maxLoggedError = 512

// The default error report's budget: errorBurst lines at once, then one
// every errorInterval.
const (
	errorBurst    = 5
	errorInterval = time.Second
)

// reportError hands an error raised while serving s (nil when there is no
// socket, as for a malformed packet) to Options.OnError, or else logs it
// within the budget of s, or of the hub when s is nil.
func (h *Hub) reportError(s *Socket, err error) {
	if h.opts.OnError != nil {
		h.opts.OnError(s, err)
		return
	}
	limit := &h.errLimit
	if s != nil {
		limit = &s.errLimit
	}
	ok, suppressed := limit.allow(time.Since(limiterEpoch))
	if !ok {
		return // before formatting err: a suppressed error costs nothing
	}
	attrs := []any{"error", callback.Clip(err.Error(), maxLoggedError)}
	if s != nil {
		attrs = append(attrs, "namespace", s.nsp.name, "socket", s.id)
	}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	h.log.Warn("rally: socket error", attrs...)
}

// errorLimiter is a budget of log lines: errorBurst at once, then one every
// errorInterval. It counts the lines it refuses so that the next one
// allowed can say how many. Its zero value is a full budget; it is safe
// for concurrent use, and it lives in the socket or hub it is the budget
// of, so that it goes away with them.
type errorLimiter struct {
	mu sync.Mutex
	// next is when the budget will be full again, on the clock of
	// limiterEpoch; each line allowed pushes it errorInterval later, and
	// a line is refused while it is more than errorBurst-1 intervals away.
	next       time.Duration
	suppressed int // lines refused since the last one allowed
}

// limiterEpoch is the origin of the limiters' clock: time.Since it is
// monotonic.
var limiterEpoch = time.Now()

// allow reports whether a line may be logged at now (on the clock of
// limiterEpoch) and, when it may, how many were refused since the last
// line allowed.
func (l *errorLimiter) allow(now time.Duration) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	next := max(l.next, now)
	if next-now > (errorBurst-1)*errorInterval {
		l.suppressed++
		return false, 0
	}
	l.next = next + errorInterval
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}
