package chattest

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/stdexample/chat"
)

// Logs collects an app's logs, safe for concurrent writers.
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Wait waits up to 5s for a log line holding every part, and returns it.
func (l *Logs) Wait(t testing.TB, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for line := range strings.Lines(l.String()) {
			if containsAll(line, parts) {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line holds %q", parts)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// NewLogger returns a text logger at debug level writing to logs.
func NewLogger(logs *Logs) *slog.Logger {
	return slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// StartApp builds an app with newServer (an app's own constructor) and
// runs it on an httptest.Server. Unless cfg says otherwise it logs at
// debug level into the returned Logs, and finds the page's npm package in
// chat.DefaultWebDir(). The hub and the server are closed when t ends;
// the logs are printed if t failed.
func StartApp(t testing.TB, newServer func(chat.Config) (http.Handler, *rally.Hub), cfg chat.Config) (*httptest.Server, *Logs) {
	t.Helper()
	logs := &Logs{}
	if cfg.Logger == nil {
		cfg.Logger = NewLogger(logs)
	}
	if cfg.WebDir == "" {
		cfg.WebDir = chat.DefaultWebDir()
	}
	handler, hub := newServer(cfg)
	srv := httptest.NewServer(handler)
	t.Cleanup(func() {
		hub.Close() // first: it ends the long-polls and websockets that srv.Close would wait for
		srv.Close()
		if t.Failed() {
			t.Logf("app logs:\n%s", logs)
		}
	})
	return srv, logs
}

// RequireBundle skips t (fails it when CI=true) when npm has not
// installed the client bundle the page loads.
func RequireBundle(t testing.TB) {
	t.Helper()
	dir := chat.DefaultWebDir()
	if _, err := os.Stat(chat.BundleFile(dir)); err != nil {
		Unavailable(t, "%s", chat.MissingBundle(dir))
	}
}
