package rally_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/sockettest"
)

// Event arguments that cannot be decoded from a 900 KB string, each in a
// different way.
type (
	// note is a JSON object; a string is not one.
	note struct{ Text string }
	// stamped holds a clock, which parses its string with time.Parse:
	// the *time.ParseError for a bad one quotes the input twice.
	stamped struct{ When clock }
	clock   time.Time
	// counted has a string-tagged number; encoding/json's error quotes the
	// string.
	counted struct {
		N int `json:",string"`
	}
	// echoed fails with an error that quotes its input, as custom
	// UnmarshalJSON methods may.
	echoed struct{}
)

func (*echoed) UnmarshalJSON(b []byte) error { return fmt.Errorf("not an echo: %s", b) }

func (c *clock) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339, s)
	*c = clock(t)
	return err
}

// bigInput is the 900 KB string the attacks send; no Go type name, log
// text or error message has a run of 32 'a's.
var bigInput = strings.Repeat("a", 900_000)

// leaked reports what of the server's inside a message for the client
// shows: a Go type name, encoding/json's words, or the input.
func leaked(msg string) string {
	for _, s := range []string{"rally_test.", "time.", "json", "Go value", "cannot", strings.Repeat("a", 32)} {
		if strings.Contains(msg, s) {
			return s
		}
	}
	return ""
}

// head shortens a possibly huge text for a failure message.
func head(s string) string {
	if len(s) <= 80 {
		return strconv.Quote(s)
	}
	n := 80
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return fmt.Sprintf("%q… (%d bytes)", s[:n], len(s))
}

// logSink is the writer of a slog.TextHandler that counts what is logged
// and keeps the beginning of each line. The handler writes each record in
// one call.
type logSink struct {
	mu    sync.Mutex
	bytes int
	lines []loggedLine
}

type loggedLine struct {
	len  int
	head string // the first 4 KiB
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bytes += len(p)
	l.lines = append(l.lines, loggedLine{len: len(p), head: string(p[:min(len(p), 4096)])})
	return len(p), nil
}

// errorLines returns the lines of the hub's "rally: socket error" records.
func (l *logSink) errorLines() []loggedLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []loggedLine
	for _, line := range l.lines {
		if strings.Contains(line.head, `msg="rally: socket error"`) {
			out = append(out, line)
		}
	}
	return out
}

func (l *logSink) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bytes
}

// text returns the beginning of what was logged, for failure messages.
func (l *logSink) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, line := range l.lines {
		b.WriteString(line.head)
	}
	return b.String()
}

// loggedHub returns a hub with the given options (nil for defaults) that
// logs to a sink, with the default error reporting.
func loggedHub(opts *rally.Options) (*rally.Hub, *logSink) {
	sink := &logSink{}
	o := rally.Options{}
	if opts != nil {
		o = *opts
	}
	o.Logger = slog.New(slog.NewTextHandler(sink, nil))
	return rally.NewHub(&o), sink
}

var suppressedAttr = regexp.MustCompile(`suppressed=(\d+)`)

// accounted returns how many errors the lines account for: each line is
// one, and its "suppressed" attribute counts those refused before it.
func accounted(lines []loggedLine) (errs, withCount int) {
	for _, line := range lines {
		errs++
		if m := suppressedAttr.FindStringSubmatch(line.head); m != nil {
			n, _ := strconv.Atoi(m[1])
			errs += n
			withCount++
		}
	}
	return errs, withCount
}

// Clients learn which argument failed, not how the server failed to
// decode it: no Go type, no encoding/json text, none of the input.
func TestBadArgumentAckIsNeutral(t *testing.T) {
	tests := []struct {
		name    string
		handler any // of event "e", or nil for none
		args    []any
		want    string
	}{
		{"string into struct", func(*rally.Socket, note) {}, []any{bigInput}, "invalid argument 1"},
		{"time field quoted twice", func(*rally.Socket, stamped) {}, []any{map[string]string{"When": bigInput}}, "invalid argument 1"},
		{"string-tagged number", func(*rally.Socket, counted) {}, []any{map[string]string{"N": bigInput}}, "invalid argument 1"},
		{"UnmarshalJSON quoting its input", func(*rally.Socket, echoed) {}, []any{bigInput}, "invalid argument 1"},
		{"second argument", func(*rally.Socket, string, stamped) {}, []any{"fine", map[string]string{"When": bigInput}}, "invalid argument 2"},
		{"variadic", func(*rally.Socket, ...note) {}, []any{map[string]string{}, bigInput}, "invalid argument 2"},
		{"panic with the input", func(_ *rally.Socket, s string) { panic(s) }, []any{bigInput}, "internal server error"},
	}
	transports := []string{client.TransportWebSocket, client.TransportPolling}
	for _, tt := range tests {
		for _, transport := range transports {
			t.Run(tt.name+"/"+transport, func(t *testing.T) {
				hub, sink := loggedHub(nil)
				if tt.handler != nil {
					hub.On("e", tt.handler)
				}
				srv := sockettest.NewServer(t, hub)
				c := srv.Dial(t, "/", &client.Options{Transports: []string{transport}})

				r, err := c.EmitWithAck(ctx5s(t), "e", tt.args...)
				var ae *rally.AckError
				if !errors.As(err, &ae) {
					t.Fatalf("no error ack: %s", head(fmt.Sprint(err)))
				}
				if ack := r.Raw(0); len(ack) >= 100 {
					t.Errorf("error ack of %d bytes: %s", len(ack), head(string(ack)))
				}
				if s := leaked(ae.Message); s != "" {
					t.Errorf("error ack %s shows %q", head(ae.Message), head(s))
				}
				if ae.Message != tt.want {
					t.Errorf("error ack %s, want %q", head(ae.Message), tt.want)
				}
				// The server's own log has the details, bounded.
				if n := sink.size(); n > 1024 {
					t.Errorf("logged %d bytes for one event: %s", n, head(sink.text()))
				}
			})
		}
	}
}

// A handler's own error reaches the client as the handler wrote it, cut
// to a bounded length at a UTF-8 boundary.
func TestHandlerErrorMessageIsCut(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		cut  bool // else sent unchanged
	}{
		{"short", "it failed", false},
		{"256 bytes", strings.Repeat("x", 256), false},
		{"900 KB ASCII", bigInput, true},
		{"300,000 two-byte runes", strings.Repeat("é", 300_000), true},
		{"three-byte runes", strings.Repeat("€", 1000), true},
	}
	hub, sink := loggedHub(nil)
	hub.On("fail", func(_ *rally.Socket, i int) error { return errors.New(tests[i].msg) })
	srv := sockettest.NewServer(t, hub)
	c := srv.Dial(t, "/", &client.Options{Transports: []string{client.TransportWebSocket}})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := sink.size()
			_, err := c.EmitWithAck(ctx5s(t), "fail", i)
			var ae *rally.AckError
			if !errors.As(err, &ae) {
				t.Fatalf("no error ack: %s", head(fmt.Sprint(err)))
			}
			got := ae.Message
			if !tt.cut {
				if got != tt.msg {
					t.Fatalf("error ack %s, want %s unchanged", head(got), head(tt.msg))
				}
				return
			}
			if len(got) > 256 || !utf8.ValidString(got) {
				t.Errorf("error ack of %d bytes (valid UTF-8: %v): %s", len(got), utf8.ValidString(got), head(got))
			}
			kept, marker, ok := strings.Cut(got, "…")
			if !ok || !strings.HasPrefix(tt.msg, kept) || len(kept) < 200 {
				t.Errorf("error ack %s is not the beginning of the handler's error and a marker", head(got))
			}
			if want := fmt.Sprintf(" (%d bytes cut)", len(tt.msg)-len(kept)); marker != want {
				t.Errorf("marker %q, want %q", marker, want)
			}
			if n := sink.size() - before; n > 1024 {
				t.Errorf("logged %d bytes for one event", n)
			}
		})
	}
}

// burst is the default logger's budget per socket at once; it grows back
// by one line a second.
const burst = 5

// maxLines is how many lines a budget of burst lines and one a second
// allows over elapsed, with one to spare for the clock.
func maxLines(elapsed time.Duration) int { return burst + int(math.Ceil(elapsed.Seconds())) + 1 }

// 200 bad events of 900 KB, sent as polling POSTs as in the security
// review, give a few short log lines, not 200 huge ones; the lines say how
// many errors were suppressed before them, and after a pause the next
// error is logged again.
func TestErrorLogFloodIsBounded(t *testing.T) {
	// The raw session answers no ping: give it time.
	hub, sink := loggedHub(&rally.Options{PingInterval: time.Minute, PingTimeout: time.Minute})
	hub.On("bad", func(*rally.Socket, stamped) {})
	hub.On("ping", func(*rally.Socket) string { return "pong" })
	srv := sockettest.NewServer(t, hub)

	p := openPoll(t, srv)
	if status, body := p.do("POST", p.q(), "40"); status != 200 || body != "ok" {
		t.Fatalf("CONNECT: %d %q", status, body)
	}
	if _, body := p.do("GET", p.q(), ""); !strings.HasPrefix(body, `40{"sid":"`) {
		t.Fatalf("CONNECT reply %q", body)
	}
	bad := `42["bad",{"When":"` + bigInput + `"}]`
	// flood posts n bad events and waits until they are handled: events of
	// a socket are handled in order, so the ping's ack comes after.
	flood := func(n int) {
		t.Helper()
		for range n {
			if status, body := p.do("POST", p.q(), bad); status != 200 || body != "ok" {
				t.Fatalf("POST: %d %q", status, body)
			}
		}
		p.do("POST", p.q(), `421["ping"]`)
		for {
			status, body := p.do("GET", p.q(), "")
			if status != 200 {
				t.Fatalf("GET: %d %q", status, body)
			}
			if strings.Contains(body, `431["pong"]`) {
				return
			}
		}
	}

	const events = 200
	start := time.Now()
	flood(events)
	elapsed := time.Since(start)
	lines, size := sink.errorLines(), sink.size()
	t.Logf("%d bad events of %d bytes in %v: %d lines, %d bytes logged", events, len(bad), elapsed.Round(time.Millisecond), len(lines), size)
	limit := maxLines(elapsed)
	if len(lines) > limit {
		t.Errorf("%d lines logged in %v, want at most %d", len(lines), elapsed, limit)
	}
	if size > limit<<10 {
		t.Errorf("%d bytes logged, want at most %d lines of 1 KiB", size, limit)
	}
	for _, line := range lines {
		if line.len > 1024 {
			t.Errorf("line of %d bytes: %s", line.len, head(line.head))
			break
		}
	}

	time.Sleep(1100 * time.Millisecond) // the budget grows back
	flood(1)
	after := sink.errorLines()
	if len(after) != len(lines)+1 {
		t.Fatalf("one bad event after a pause logged %d lines, want 1", len(after)-len(lines))
	}
	if errs, withCount := accounted(after); errs != events+1 || withCount == 0 {
		t.Errorf("%d lines (%d saying how many were suppressed before them) account for %d errors, want %d", len(after), withCount, errs, events+1)
	}
}

// One socket using up its budget does not silence another.
func TestErrorLogBudgetIsPerSocket(t *testing.T) {
	hub, sink := loggedHub(nil)
	hub.On("bad", func(*rally.Socket, note) {})
	srv := sockettest.NewServer(t, hub)
	opts := &client.Options{Transports: []string{client.TransportWebSocket}}
	noisy, quiet := srv.Dial(t, "/", opts), srv.Dial(t, "/", opts)
	start := time.Now()
	for range 50 {
		noisy.Emit("bad", "x")
	}
	if _, err := noisy.EmitWithAck(ctx5s(t), "bad", "x"); err == nil {
		t.Fatal("bad event acknowledged without an error")
	}
	noisyLines, elapsed := len(sink.errorLines()), time.Since(start)
	if _, err := quiet.EmitWithAck(ctx5s(t), "bad", "x"); err == nil {
		t.Fatal("bad event acknowledged without an error")
	}
	lines := sink.errorLines()
	if len(lines) != noisyLines+1 || !strings.Contains(lines[len(lines)-1].head, "socket="+quiet.ID()) {
		t.Fatalf("after %d lines for the noisy socket, the quiet one's error was not logged: %d lines", noisyLines, len(lines))
	}
	if limit := maxLines(elapsed); noisyLines > limit {
		t.Errorf("51 bad events of one socket logged %d lines in %v, want at most %d", noisyLines, elapsed, limit)
	}
}

// Malformed packets have no socket; the hub rate-limits them as a whole,
// since each closes its connection and the next comes on a new one.
func TestMalformedPacketLogIsBoundedHubWide(t *testing.T) {
	hub, sink := loggedHub(nil)
	srv := sockettest.NewServer(t, hub)
	malformed := func(n int) {
		for range n {
			raw := dialRaw(t, srv)
			raw.text("40")
			raw.read()
			raw.text(`42{"x":"` + strings.Repeat("a", 10_000) + `"}`)
			raw.closed()
		}
	}
	const conns = 30
	start := time.Now()
	malformed(conns)
	elapsed := time.Since(start)
	lines := sink.errorLines()
	if limit := maxLines(elapsed); len(lines) > limit {
		t.Errorf("%d lines logged in %v, want at most %d", len(lines), elapsed, limit)
	}
	time.Sleep(1100 * time.Millisecond)
	malformed(1)
	deadline := time.Now().Add(5 * time.Second)
	for len(sink.errorLines()) == len(lines) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	after := sink.errorLines()
	if len(after) != len(lines)+1 {
		t.Fatalf("one malformed packet after a pause logged %d lines, want 1", len(after)-len(lines))
	}
	if errs, withCount := accounted(after); errs != conns+1 || withCount == 0 {
		t.Errorf("%d lines (%d saying how many were suppressed before them) account for %d errors, want %d", len(after), withCount, errs, conns+1)
	}
}

// Options.OnError gets every error, not rate-limited, with the details a
// program needs: the event, the Go type, the decoding error itself.
func TestOnErrorGetsEveryErrorInFull(t *testing.T) {
	var mu sync.Mutex
	var errs []error
	hub := rally.NewHub(&rally.Options{OnError: func(_ *rally.Socket, err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}})
	hub.On("bad", func(*rally.Socket, stamped) {})
	srv := sockettest.NewServer(t, hub)
	c := srv.Dial(t, "/", &client.Options{Transports: []string{client.TransportWebSocket}})
	const events = 20
	for range events - 1 {
		c.Emit("bad", map[string]string{"When": bigInput})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // 18 MB to decode
	defer cancel()
	if _, err := c.EmitWithAck(ctx, "bad", map[string]string{"When": bigInput}); err == nil {
		t.Fatal("bad event acknowledged without an error")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != events {
		t.Fatalf("OnError got %d errors, want %d", len(errs), events)
	}
	for _, err := range errs {
		var ee *rally.EventError
		var pe *time.ParseError
		if !errors.As(err, &ee) || ee.Event != "bad" || !errors.As(err, &pe) || pe.Value != bigInput {
			t.Fatalf("OnError got %s, want an *EventError wrapping the *time.ParseError of the input", head(err.Error()))
		}
		if !strings.Contains(err.Error(), "argument 1") || !strings.Contains(err.Error(), "rally_test.stamped") {
			t.Fatalf("OnError got %s, want it to name the argument and its Go type", head(err.Error()))
		}
	}
}
