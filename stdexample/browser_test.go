package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rallyhq/rally/stdexample/chat"
	"github.com/rallyhq/rally/stdexample/chat/chattest"
)

// TestBrowser runs the chat page in two tabs of headless Chromium: both
// join a room and exchange text and files, and each must show what the
// other sent. Then it runs the Socket.IO documentation's client quoted in
// the package doc. Screenshots land in t.ArtifactDir(): a temporary
// directory, kept with go test -artifacts (under -outputdir).
func TestBrowser(t *testing.T) {
	chattest.RequireBundle(t)
	browser := chattest.NewBrowser(t)
	srv, logs := startApp(t, chat.Config{Token: testToken})
	start := time.Now()

	shots := chattest.TwoUsers(t, browser, chattest.Scenario{URL: srv.URL, Token: testToken, Room: "go-test"}, t.ArtifactDir())
	t.Logf("screenshots: %s", strings.Join(shots, ", "))

	got := chattest.DocSnippet(t, browser, srv.URL)
	var logged []any
	if err := json.Unmarshal([]byte(got), &logged); err != nil {
		t.Fatalf("snippet output %s: %v", got, err)
	}
	greetings := []any{"Hey!", map[string]any{"ms": "jane"}, []any{4.0, 3.0, 2.0, 1.0}}
	echo := []any{"Hello!"}
	if len(logged) != 2 || !slicesContain(logged, greetings) || !slicesContain(logged, echo) {
		t.Errorf("the documentation's client logged %s, want [\"Hello!\"] and [\"Hey!\",{\"ms\":\"jane\"},[4,3,2,1]]", got)
	}
	logs.Wait(t, `msg="chat: salutations"`, `text=Hello! who=map[mr:john] data="[1 2 3 4]"`)
	t.Logf("browser scenario took %v", time.Since(start).Round(time.Millisecond))
}

// TestBrowserRefused checks what the page shows when the server refuses
// the client: the HTTP middleware (wrong token, 403) or the connect
// middleware (a rally.ConnectError).
func TestBrowserRefused(t *testing.T) {
	chattest.RequireBundle(t)
	browser := chattest.NewBrowser(t)
	srv, _ := startApp(t, chat.Config{Token: testToken, RequireToken: true})
	for _, tc := range []struct{ query, want string }{
		{"?token=wrong", "refused: invalid token"},
		{"", "refused: authentication required [auth_required]"},
	} {
		if got := chattest.JoinRefused(t, browser, srv.URL+"/"+tc.query); got != tc.want {
			t.Errorf("page %q says %q, want %q", tc.query, got, tc.want)
		}
	}
}

// TestBrowserMissingBundle checks that the page tells how to install the
// client when npm has not.
func TestBrowserMissingBundle(t *testing.T) {
	browser := chattest.NewBrowser(t)
	dir := t.TempDir()
	srv, logs := startApp(t, chat.Config{WebDir: dir})
	status := chattest.MissingClient(t, browser, srv.URL)
	if want := "npm ci --prefix " + dir; !strings.Contains(status, want) {
		t.Errorf("the page says %q, want it to hold %q", status, want)
	}
	logs.Wait(t, "level=ERROR", "npm ci --prefix "+dir)
}

func slicesContain(list []any, want any) bool {
	for _, v := range list {
		if reflect.DeepEqual(v, want) {
			return true
		}
	}
	return false
}
