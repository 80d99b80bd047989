package main

import (
	"strings"
	"testing"
	"time"

	"github.com/rallyhq/rally/stdexample/chat"
	"github.com/rallyhq/rally/stdexample/chat/chattest"
)

// TestBrowser runs the chat page, served through chi, in two tabs of
// headless Chromium: both join a room and exchange text and files, and
// each must show what the other sent. Screenshots land in
// t.ArtifactDir(): a temporary directory, kept with go test -artifacts
// (under -outputdir).
func TestBrowser(t *testing.T) {
	chattest.RequireBundle(t)
	browser := chattest.NewBrowser(t)
	srv, _ := startApp(t, chat.Config{Token: testToken})
	start := time.Now()
	shots := chattest.TwoUsers(t, browser, chattest.Scenario{URL: srv.URL, Token: testToken, Room: "chi-test"}, t.ArtifactDir())
	t.Logf("screenshots: %s", strings.Join(shots, ", "))
	t.Logf("browser scenario took %v", time.Since(start).Round(time.Millisecond))
}
