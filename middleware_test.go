package rally_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
)

// TestLogRequestsSessionIDs serves a hub behind LogRequests and drives it
// with a raw polling session and with the Go client, polling and then
// upgraded to websocket. The session ids they use are on no info-level
// line, whatever the logger's level; a logger enabled for debug level
// gets them on debug-level lines, one per request that names a session.
func TestLogRequestsSessionIDs(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		t.Run(level.String(), func(t *testing.T) {
			logs := &logBuffer{}
			logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level}))
			hub := rally.NewHub(nil)
			hub.On("echo", func(s *rally.Socket, v string) string { return v })
			srv := httptest.NewServer(rally.LogRequests(logger)(hub))
			transport := &http.Transport{}
			rec := &sidRecorder{next: transport}
			httpClient := &http.Client{Transport: rec}
			defer func() {
				hub.Close()
				srv.Close()
				transport.CloseIdleConnections()
				if t.Failed() {
					t.Logf("logs:\n%s", logs)
				}
			}()

			raw := rawPollingSession(t, httpClient, srv.URL)

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := client.Dial(ctx, srv.URL, &client.Options{HTTPClient: httpClient})
			if err != nil {
				t.Fatal(err)
			}
			for c.Transport() != client.TransportWebSocket {
				if ctx.Err() != nil {
					t.Fatalf("the client is still on %s", c.Transport())
				}
				time.Sleep(10 * time.Millisecond)
			}
			if _, err := c.EmitWithAck(ctx, "echo", "hi"); err != nil {
				t.Fatal(err)
			}
			c.Close()
			// A websocket is logged when it closes.
			logs.wait(t, `level=INFO msg="rally: request"`, "transport=websocket", "status=101")

			sids := rec.all()
			if len(sids) < 2 || !slices.Contains(sids, raw) {
				t.Fatalf("the requests named the sessions %q; want the raw one (%s) and the client's", sids, raw)
			}
			text := logs.String()
			requests := 0
			for line := range strings.Lines(text) {
				if !strings.Contains(line, "level=INFO") {
					continue
				}
				if strings.Contains(line, `msg="rally: request"`) {
					requests++
				}
				if strings.Contains(line, "sid=") {
					t.Errorf("an info-level line has a sid: %s", line)
				}
				for _, sid := range sids {
					if strings.Contains(line, sid) {
						t.Errorf("an info-level line holds the session id %s: %s", sid, line)
					}
				}
			}
			if requests < 6 {
				t.Errorf("%d info-level request lines, want one for each of the 6 requests or more", requests)
			}

			for _, sid := range sids {
				found := false
				for line := range strings.Lines(text) {
					if strings.Contains(line, `level=DEBUG msg="rally: session request"`) && strings.Contains(line, "sid="+sid) {
						found = true
						break
					}
				}
				switch {
				case level == slog.LevelDebug && !found:
					t.Errorf("no debug-level line has sid=%s", sid)
				case level == slog.LevelInfo && strings.Contains(text, sid):
					t.Errorf("an info-level logger wrote the session id %s", sid)
				}
			}
			if level == slog.LevelDebug && !strings.Contains(text, "level=DEBUG") {
				t.Error("nothing was logged at debug level")
			}
		})
	}
}

// rawPollingSession opens an Engine.IO session by hand — handshake,
// CONNECT posted, its answer polled — and returns its sid.
func rawPollingSession(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	u := base + "/socket.io/?EIO=4&transport=polling"
	do := func(method, url, body string) string {
		t.Helper()
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %s %q %v", method, url, res.Status, b, err)
		}
		return string(b)
	}
	open := do("GET", u, "")
	var hs struct{ SID string }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(open, "0")), &hs); err != nil || hs.SID == "" {
		t.Fatalf("handshake answered %q (%v)", open, err)
	}
	u += "&sid=" + hs.SID
	if got := do("POST", u, "40"); got != "ok" {
		t.Fatalf("posting CONNECT: %q", got)
	}
	if got := do("GET", u, ""); !strings.HasPrefix(got, `40{"sid":`) {
		t.Fatalf("polling for CONNECT's answer: %q", got)
	}
	return hs.SID
}

// sidRecorder is an http.RoundTripper that remembers the session ids
// (sid parameters) of the requests it carries.
type sidRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	sids []string
}

func (r *sidRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if sid := req.URL.Query().Get("sid"); sid != "" {
		r.mu.Lock()
		if !slices.Contains(r.sids, sid) {
			r.sids = append(r.sids, sid)
		}
		r.mu.Unlock()
	}
	return r.next.RoundTrip(req)
}

func (r *sidRecorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.sids...)
}

// logBuffer collects log lines from concurrent writers.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// wait waits up to 5s for a line holding every part.
func (b *logBuffer) wait(t *testing.T, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for line := range strings.Lines(b.String()) {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line holds %q", parts)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
