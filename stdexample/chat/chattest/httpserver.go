package chattest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
)

// ServeHTTPServer checks that srv, an app's http.Server as
// chat.NewHTTPServer builds it, has the settings a server on the
// internet needs, then serves it on a listener on 127.0.0.1 until t ends
// and returns its URL. hub is the app's hub: it is closed first when t
// ends, then srv.
func ServeHTTPServer(t testing.TB, srv *http.Server, hub *rally.Hub) string {
	t.Helper()
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"ReadHeaderTimeout", srv.ReadHeaderTimeout, 10 * time.Second},
		{"MaxHeaderBytes", srv.MaxHeaderBytes, 16 << 10},
		{"IdleTimeout", srv.IdleTimeout, 120 * time.Second},
		{"ReadTimeout", srv.ReadTimeout, time.Duration(0)},
		{"WriteTimeout", srv.WriteTimeout, time.Duration(0)},
	} {
		if f.got != f.want {
			t.Errorf("http.Server.%s is %v, want %v", f.name, f.got, f.want)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		hub.Close() // first: it ends the long-polls and websockets
		// Shutdown, not Close: it waits for the connection that got a
		// 431, which net/http lingers on for half a second.
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutting the server down: %v", err)
			srv.Close()
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// CheckHeaderLimit sends Socket.IO handshakes to the app at url: one with
// 8 KiB of headers, which it must answer, and one with 32 KiB, which it
// must refuse with 431 Request Header Fields Too Large. (The bound is 16
// KiB; net/http reads up to 4 KiB past it before refusing.)
func CheckHeaderLimit(t testing.TB, url string) {
	t.Helper()
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	c := &http.Client{Transport: transport}
	for _, tc := range []struct {
		size   int
		status int
		body   string
	}{
		{8 << 10, http.StatusOK, `0{"sid":`},
		{32 << 10, http.StatusRequestHeaderFieldsTooLarge, "431 Request Header Fields Too Large"},
	} {
		req, err := http.NewRequest("GET", url+"/socket.io/?EIO=4&transport=polling", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Padding", strings.Repeat("x", tc.size))
		res, err := c.Do(req)
		if err != nil {
			t.Errorf("handshake with a %d KiB header: %v", tc.size>>10, err)
			continue
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status || !strings.HasPrefix(string(body), tc.body) {
			t.Errorf("handshake with a %d KiB header: %s %.40q; want %d %s…", tc.size>>10, res.Status, body, tc.status, tc.body)
		}
	}
}

// CheckSessionIDs opens two Engine.IO sessions on the app at url, one by
// hand over polling and one with the Go client (polling, then websocket),
// joins a room and chats, and checks the app's logs (at debug level, as
// NewLogger makes them): the session ids are on no info-level line, since
// each is a bearer credential for its session, and on debug-level ones.
func CheckSessionIDs(t testing.TB, url string, logs *Logs) {
	t.Helper()
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	rec := &sidRecorder{next: transport}
	httpClient := &http.Client{Transport: rec}

	// By hand: the handshake answers the sid, the next requests name it.
	u := url + "/socket.io/?EIO=4&transport=polling"
	open := send(t, httpClient, "GET", u, "")
	var hs struct{ SID string }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(open, "0")), &hs); err != nil || hs.SID == "" {
		t.Fatalf("the handshake answered %q (%v)", open, err)
	}
	u += "&sid=" + hs.SID
	if got := send(t, httpClient, "POST", u, "40"); got != "ok" {
		t.Fatalf("posting CONNECT: %q", got)
	}
	if got := send(t, httpClient, "GET", u, ""); !strings.HasPrefix(got, `40{"sid":`) {
		t.Fatalf("polling for the answer to CONNECT: %q", got)
	}
	send(t, httpClient, "POST", u, "1") // close

	c := Connect(t, url, &client.Options{HTTPClient: httpClient})
	deadline := time.Now().Add(Timeout)
	for c.Transport() != client.TransportWebSocket {
		if time.Now().After(deadline) {
			t.Fatalf("the client is still on %s", c.Transport())
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.MustAck(nil, "join", "sids")
	c.MustAck(nil, "chat message", "sids", "hello")
	id := c.ID()
	c.Close()
	logs.Wait(t, `level=INFO msg="rally: request"`, "transport=websocket", "status=101")
	logs.Wait(t, `msg="chat: disconnected"`, "socket="+id)

	sids := rec.all()
	if len(sids) != 2 {
		t.Fatalf("the requests named the sessions %q, want 2", sids)
	}
	text := logs.String()
	for _, sid := range sids {
		debug := false
		for _, line := range strings.SplitAfter(text, "\n") {
			if !strings.Contains(line, sid) {
				continue
			}
			if !strings.Contains(line, "level=DEBUG") {
				t.Errorf("a line not at debug level holds the session id %s: %s", sid, line)
			} else {
				debug = true
			}
		}
		if !debug {
			t.Errorf("no debug-level line holds the session id %s", sid)
		}
	}
}

// send makes a request and returns the body of its 200 response.
func send(t testing.TB, c *http.Client, method, url, body string) string {
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

// sidRecorder is an http.RoundTripper that remembers the session ids (sid
// parameters) of the requests it carries.
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
	return slices.Clone(r.sids)
}
