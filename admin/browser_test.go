package admin_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/admin"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/internal/nodetest"
)

// missing skips the test, or fails it under CI=true, where nothing may be
// skipped.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format+" (CI=true: browser tests must not be skipped)", args...)
	}
	t.Skipf(format, args...)
}

// TestBrowserUI runs the official Admin UI page in headless Chromium
// against an instrumented hub that serves it: the page logs in, lists the
// sockets and rooms of the test's clients, and disconnects one with its
// button.
func TestBrowserUI(t *testing.T) {
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(chromium); err != nil {
		missing(t, "chromium not found at %s (apt-get install chromium, or set CHROMIUM)", chromium)
	}
	dist, err := filepath.Abs("testdata/node_modules/@socket.io/admin-ui/ui/dist")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dist, "testdata/node_modules/playwright-core"} {
		if _, err := os.Stat(p); err != nil {
			missing(t, "%s missing; run: npm ci --prefix admin/testdata", p)
		}
	}
	shots, err := filepath.Abs("testdata/screenshots")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	hub := rally.NewHub(nil)
	a := &app{sockets: make(map[string]*rally.Socket)}
	hub.OnConnect(func(s *rally.Socket) {
		a.mu.Lock()
		a.sockets[s.ID()] = s
		a.mu.Unlock()
	})
	hub.On("join", func(s *rally.Socket, room string) string { s.Join(room); return "ok" })
	inst, err := admin.Instrument(hub, &admin.Options{
		Auth:     &admin.BasicAuth{Username: "admin", PasswordHash: hash(t, "s3cret")},
		ServerID: "rally-browser-test",
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", hub)
	mux.Handle("/ui/", http.StripPrefix("/ui/", http.FileServer(http.Dir(dist))))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		inst.Close()
		hub.Close()
		srv.Close()
	})

	dial := func(rooms ...string) *client.Socket {
		c := client.New(srv.URL+"/", &client.Options{DisableReconnection: true})
		t.Cleanup(func() { c.Close() })
		ctx, cancel := contextTimeout()
		defer cancel()
		if err := c.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		for _, room := range rooms {
			if _, err := c.EmitWithAck(ctx, "join", room); err != nil {
				t.Fatal(err)
			}
		}
		return c
	}
	alice := dial("lobby", "chess")
	bob := dial("lobby")

	p := nodetest.Start(t, "../../admin/testdata/ui.js", nodetest.Options{Env: []string{
		"CHROMIUM=" + chromium,
		"UI_URL=" + srv.URL + "/ui/",
		"SERVER_URL=" + srv.URL,
		"SOCKETIO_PATH=/socket.io",
		"NAMESPACE=/admin",
		"USERNAME=admin",
		"PASSWORD=s3cret",
		"SERVER_ID=rally-browser-test",
		"EXPECT_SOCKETS=" + alice.ID() + "," + bob.ID(),
		"EXPECT_ROOMS=lobby,chess",
		"DISCONNECT_ID=" + alice.ID(),
		"SCREENSHOT_DIR=" + shots,
	}})
	const wait = 90 * time.Second
	p.WaitEvent(wait, "ready", nil)
	sockets := p.WaitEvent(wait, "sockets", nil)
	ids := strings.Fields(strings.Join(toStrings(sockets.Get("ids")), " "))
	if !slices.Contains(ids, alice.ID()) || !slices.Contains(ids, bob.ID()) {
		t.Errorf("the sockets page lists %v, want %s and %s", ids, alice.ID(), bob.ID())
	}
	rooms := toStrings(p.WaitEvent(wait, "rooms", nil).Get("rooms"))
	if !containsText(rooms, "lobby") || !containsText(rooms, "chess") {
		t.Errorf("the rooms page lists %v", rooms)
	}
	t.Logf("screenshots: %s", filepath.Join(shots, "dashboard.png"))

	p.WaitEvent(wait, "clicked", nil)
	select {
	case <-alice.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("alice's client was not disconnected")
	}
	eventually(t, "alice to be disconnected server side", func() bool { return !a.socket(alice.ID()).Connected() })
	if !a.socket(bob.ID()).Connected() {
		t.Error("bob was disconnected too")
	}
	p.WaitEvent(wait, "gone", nil)
	p.WaitEvent(wait, "done", nil)
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

func containsText(list []string, s string) bool {
	return slices.ContainsFunc(list, func(e string) bool { return strings.Contains(e, s) })
}
