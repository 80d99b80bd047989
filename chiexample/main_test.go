package main

import (
	"net/http/httptest"
	"testing"

	"github.com/rallyhq/rally/stdexample/chat"
	"github.com/rallyhq/rally/stdexample/chat/chattest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testToken = "test-token"

// startApp runs the app's handler on an httptest.Server until t ends.
func startApp(t *testing.T, cfg chat.Config) (*httptest.Server, *chattest.Logs) {
	t.Helper()
	return chattest.StartApp(t, newServer, cfg)
}
