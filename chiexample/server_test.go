package main

import (
	"testing"

	"github.com/rallyhq/rally/stdexample/chat"
	"github.com/rallyhq/rally/stdexample/chat/chattest"
)

// TestHTTPServer runs the chi app on the http.Server that main runs it on
// (chat.Serve builds it with chat.NewHTTPServer), on a real listener:
// its settings, its bound on request headers, and session ids kept out
// of the info-level logs.
func TestHTTPServer(t *testing.T) {
	logs := &chattest.Logs{}
	cfg := chat.Config{Logger: chattest.NewLogger(logs), WebDir: chat.DefaultWebDir()}
	handler, hub := newServer(cfg)
	url := chattest.ServeHTTPServer(t, chat.NewHTTPServer(handler, cfg.Logger), hub)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("app logs:\n%s", logs)
		}
	})
	chattest.CheckHeaderLimit(t, url)
	chattest.CheckSessionIDs(t, url, logs)
}
