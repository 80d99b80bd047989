package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/stdexample/chat"
	"github.com/rallyhq/rally/stdexample/chat/chattest"
)

// get fetches url and returns the response and its body.
func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

func TestPage(t *testing.T) {
	srv, _ := startApp(t, chat.Config{})
	for _, tc := range []struct{ path, ctype, holds string }{
		{"/", "text/html", `<script src="/vendor/socket.io.min.js"></script>`},
		{"/app.js", "text/javascript", "request('file'"},
		{"/style.css", "text/css", "#messages"},
	} {
		res, body := get(t, srv.URL+tc.path)
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(body, tc.holds) {
			t.Errorf("GET %s: %s, %s, holds %q: %v; want 200 %s", tc.path, res.Status, res.Header.Get("Content-Type"), tc.holds, strings.Contains(body, tc.holds), tc.ctype)
		}
	}
	if res, _ := get(t, srv.URL+"/package.json"); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /package.json: %s, want 404: only the page's files are served", res.Status)
	}
}

func TestClientBundle(t *testing.T) {
	chattest.RequireBundle(t)
	srv, _ := startApp(t, chat.Config{})
	res, body := get(t, srv.URL+chat.BundlePath)
	want, err := os.ReadFile(chat.BundleFile(chat.DefaultWebDir()))
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") || body != string(want) {
		t.Errorf("GET %s: %s %s, %d bytes; want 200 text/javascript with the %d bytes of the npm package", chat.BundlePath, res.Status, res.Header.Get("Content-Type"), len(body), len(want))
	}
}

func TestMissingBundle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "web")
	srv, logs := startApp(t, chat.Config{WebDir: dir})
	logs.Wait(t, "level=ERROR", "npm ci --prefix "+dir)
	res, body := get(t, srv.URL+chat.BundlePath)
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "npm ci --prefix "+dir+"\n") {
		t.Errorf("GET %s without the package: %s %q; want 503 naming npm ci --prefix %s", chat.BundlePath, res.Status, body, dir)
	}
	// Installing it while the server runs is enough.
	file := chat.BundleFile(dir)
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("/* bundle */"), 0o644); err != nil {
		t.Fatal(err)
	}
	if res, body := get(t, srv.URL+chat.BundlePath); res.StatusCode != http.StatusOK || body != "/* bundle */" {
		t.Errorf("GET %s after the install: %s %q", chat.BundlePath, res.Status, body)
	}
}

// TestHandshakeToken checks the HTTP middleware on raw Engine.IO
// handshakes.
func TestHandshakeToken(t *testing.T) {
	srv, _ := startApp(t, chat.Config{Token: testToken})
	handshake := srv.URL + "/socket.io/?EIO=4&transport=polling"
	for _, tc := range []struct {
		query  string
		header string
		status int
		body   string
	}{
		{"", "", http.StatusOK, `0{"sid":`},
		{"&token=" + testToken, "", http.StatusOK, `0{"sid":`},
		{"", "Bearer " + testToken, http.StatusOK, `0{"sid":`},
		{"&token=nope", "", http.StatusForbidden, `{"code":4,"message":"invalid token"}`},
		{"", "Bearer nope", http.StatusForbidden, `{"code":4,"message":"invalid token"}`},
	} {
		req, _ := http.NewRequest("GET", handshake+tc.query, nil)
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status || !strings.HasPrefix(string(body), tc.body) {
			t.Errorf("handshake%s (Authorization %q): %s %s; want %d %s…", tc.query, tc.header, res.Status, body, tc.status, tc.body)
		}
	}
}

// TestNodeClient runs the Socket.IO documentation's client, quoted in the
// package doc, in Node with the npm package the page uses.
func TestNodeClient(t *testing.T) {
	chattest.RequireBundle(t)
	node, err := exec.LookPath("node")
	if err != nil {
		chattest.Unavailable(t, "node not found in $PATH")
	}
	srv, logs := startApp(t, chat.Config{})
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http")
	script := `const { io } = require('socket.io-client');
let logged = 0;
const log = console.log;
console.log = (...args) => { log(...args); if (++logged === 2) socket.close(); };
setTimeout(() => { console.error('timed out'); process.exit(1); }, 10000).unref();
` + strings.ReplaceAll(docSnippet, "ws://localhost:3000", wsURL)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "-e", script)
	cmd.Dir = chat.DefaultWebDir() // where node_modules is
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	slices.Sort(lines)
	want := []string{"Hello!", "Hey! { ms: 'jane' } <Buffer 04 03 02 01>"}
	if !slices.Equal(lines, want) {
		t.Errorf("node printed %q, want %q", lines, want)
	}
	logs.Wait(t, `msg="chat: salutations"`, `text=Hello! who=map[mr:john] data="[1 2 3 4]"`)
}

// docSnippet is the client of the package doc, verbatim.
const docSnippet = `const socket = io('ws://localhost:3000');
socket.on('connect', () => {
  socket.send('Hello!');
  socket.emit('salutations', 'Hello!', { 'mr': 'john' }, Uint8Array.from([1, 2, 3, 4]));
});
socket.on('message', data => console.log(data));
socket.on('greetings', (a, b, c) => console.log(a, b, c));
`

// TestGracefulShutdown serves the app with chat.Serve, as main does, and
// cancels its context with a client connected.
func TestGracefulShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &chattest.Logs{}
	cfg := chat.Config{Logger: chattest.NewLogger(logs), WebDir: chat.DefaultWebDir()}
	handler, hub := newServer(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- chat.Serve(ctx, ln, handler, hub, cfg.Logger) }()

	c := chattest.Connect(t, "http://"+ln.Addr().String(), &client.Options{Transports: []string{client.TransportPolling}, DisableReconnection: true})
	c.MustAck(nil, "join", "lobby")
	start := time.Now()
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve returned %v after a graceful shutdown", err)
		}
	case <-time.After(chat.ShutdownTimeout + time.Second):
		t.Fatal("Serve did not return")
	}
	t.Logf("shut down in %v", time.Since(start))
	select {
	case <-c.Done():
		if r := c.Reason(); r != client.ReasonTransportClose {
			t.Errorf("the client disconnected with %q, want %q", r, client.ReasonTransportClose)
		}
	case <-time.After(chattest.Timeout):
		t.Error("the client is still connected")
	}
	logs.Wait(t, `msg="chat: disconnected"`, `reason="server shutting down"`)
	logs.Wait(t, `msg="chat: stopped"`)
	if _, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
		t.Error("the server still answers")
	}
}
