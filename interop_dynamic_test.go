package rally_test

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/rallyhq/rally"
)

// dynamicHandlers registers what server.js's "dynamic" scenario does.
func dynamicHandlers(hub *rally.Hub) {
	tenants := hub.OfRegexp(regexp.MustCompile(`^/tenant-\d+$`))
	tenants.Use(func(s *rally.Socket) error {
		var auth struct{ Token string }
		if s.Handshake().DecodeAuth(&auth) == nil && auth.Token == "bad" {
			return errors.New("refused")
		}
		return nil
	})
	tenants.On("whoami", func(s *rally.Socket) string { return s.Namespace().Name() })
	tenants.On("shout", func(s *rally.Socket, text string) { tenants.Emit("heard", s.Namespace().Name(), text) })
	byFunction := hub.OfMatch(func(name string, auth json.RawMessage) bool {
		var a struct{ Allow bool }
		json.Unmarshal(auth, &a)
		return strings.HasPrefix(name, "/fn-") && a.Allow
	})
	byFunction.On("whoami", func(s *rally.Socket) string { return s.Namespace().Name() })
}

// dynamicTranscript joins dynamic namespaces and returns what the client
// saw.
func dynamicTranscript(t *testing.T, d *driver) []any {
	t.Helper()
	open := func(name, path string, auth map[string]any) {
		opts := map[string]any{"forceNew": true}
		if auth != nil {
			opts["auth"] = auth
		}
		d.open(name, path, opts, nil)
	}
	open("a", "/tenant-1", nil)
	open("b", "/tenant-2", nil)
	d.ready("a")
	d.ready("b")
	seen := []any{d.emitAck("a", "whoami"), d.emitAck("b", "whoami")}
	d.emit("a", "shout", "hi")
	for _, name := range []string{"a", "b"} {
		seen = append(seen, waitEvent(t, d.p, "recv", map[string]any{"name": name, "ev": "heard"}).Get("args"))
	}
	for _, c := range []struct {
		name, path string
		auth       map[string]any
	}{
		{"other", "/other", nil},
		{"refused", "/tenant-3", map[string]any{"token": "bad"}},
		{"denied", "/fn-2", map[string]any{"allow": false}},
	} {
		open(c.name, c.path, c.auth)
		seen = append(seen, waitEvent(t, d.p, "connect_error", map[string]any{"name": c.name}).Get("message"))
	}
	open("f", "/fn-1", map[string]any{"allow": true})
	d.ready("f")
	return append(seen, d.emitAck("f", "whoami"))
}

func TestInteropDynamicNamespaces(t *testing.T) {
	forEachInteropMode(t, func(t *testing.T, mode string) {
		srv := startInterop(t, mode, nil, nil)
		dynamicHandlers(srv.hub)
		got := dynamicTranscript(t, srv.driver(t))
		checkJSON(t, "what the client saw of rally", got, []any{
			[]any{"/tenant-1"}, []any{"/tenant-2"},
			[]any{"/tenant-1", "hi"}, []any{"/tenant-1", "hi"},
			"Invalid namespace", "refused", "Invalid namespace",
			[]any{"/fn-1"},
		})
		checkJSON(t, "rally and Node", got, dynamicTranscript(t, nodeDriver(t, mode, "dynamic")))
	})
}
