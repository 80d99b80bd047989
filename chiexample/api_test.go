package main

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/stdexample/chat"
	"github.com/rallyhq/rally/stdexample/chat/chattest"
)

// do sends a request and returns the response and its body.
func do(t *testing.T, method, url, token, ctype, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

// TestSocketIORoute checks the hub behind chi's routing and middleware:
// both transports and the upgrade, the token checks, and the request id
// that chi's middleware put in the handshake's context.
func TestSocketIORoute(t *testing.T) {
	srv, logs := startApp(t, chat.Config{Token: testToken})
	for _, tr := range [][]string{{client.TransportPolling}, {client.TransportWebSocket}, nil} {
		c := chattest.Connect(t, srv.URL, &client.Options{Transports: tr, Query: url.Values{"token": {testToken}}})
		c.Wait("greetings", nil)
		var info chat.RoomInfo
		c.MustAck(&info, "join", "route")
		if i := slices.IndexFunc(info.Users, func(m chat.Member) bool { return m.ID == c.ID() }); i < 0 || !info.Users[i].Member {
			t.Errorf("transports %v: %s is not a member of %+v", tr, c.ID(), info.Users)
		}
		line := logs.Wait(t, `msg="chiexample: socket"`, "socket="+c.ID())
		if strings.Contains(line, `request_id=""`) || !strings.Contains(line, "request_id=") {
			t.Errorf("the socket's context has no chi request id: %s", line)
		}
	}
	if err := chattest.Refused(t, srv.URL, &client.Options{Query: url.Values{"token": {"wrong"}}}); err == nil {
		t.Error("a wrong token got in")
	}
	if res, _ := do(t, "GET", srv.URL+"/healthz", "", "", ""); res.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz: %s", res.Status)
	}
	if res, body := do(t, "GET", srv.URL+"/", "", "", ""); res.StatusCode != http.StatusOK || !strings.Contains(body, chat.BundlePath) {
		t.Errorf("GET /: %s, want the page", res.Status)
	}
}

// TestAPI checks the JSON API against sockets in a room.
func TestAPI(t *testing.T) {
	srv, _ := startApp(t, chat.Config{Token: testToken})
	alice := chattest.Connect(t, srv.URL, &client.Options{Auth: map[string]string{"nickname": "alice"}})
	bob := chattest.Connect(t, srv.URL, &client.Options{Auth: map[string]string{"nickname": "bob", "token": testToken}})
	alice.MustAck(nil, "join", "api")
	bob.MustAck(nil, "join", "api")
	outsider := chattest.Connect(t, srv.URL, nil)
	outsider.MustAck(nil, "join", "other")

	res, body := do(t, "GET", srv.URL+"/api/rooms/api/users", "", "", "")
	want := `{"room":"api","users":[{"id":"` + alice.ID() + `","nickname":"alice","member":false},{"id":"` + bob.ID() + `","nickname":"bob","member":true}]}`
	if res.StatusCode != http.StatusOK || strings.TrimSpace(body) != want {
		t.Errorf("GET users: %s %s\nwant %s", res.Status, body, want)
	}

	res, body = do(t, "POST", srv.URL+"/api/rooms/api/messages", testToken, "text/plain", "  Hello from the API ")
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST message: %s %s", res.Status, body)
	}
	for _, c := range []*chattest.Client{alice, bob} {
		c.Wait("chat message", func(r rally.Reply) bool {
			var m chat.Message
			return r.Decode(&m) == nil && m.Room == "api" && m.From == "server" && m.Text == "Hello from the API"
		})
	}

	for _, tc := range []struct {
		method, path, token, ctype, body string
		status                           int
	}{
		{"POST", "/api/rooms/api/messages", "", "text/plain", "guest", http.StatusUnauthorized},
		{"POST", "/api/rooms/api/messages", "wrong", "text/plain", "intruder", http.StatusForbidden},
		{"POST", "/api/rooms/api/messages", testToken, "application/json", `"json"`, http.StatusUnsupportedMediaType},
		{"POST", "/api/rooms/api/messages", testToken, "text/plain", "   ", http.StatusBadRequest},
		{"POST", "/api/rooms/api/messages", testToken, "text/plain", strings.Repeat("x", 5000), http.StatusRequestEntityTooLarge},
		{"GET", "/api/rooms/" + strings.Repeat("r", 40) + "/users", "", "", "", http.StatusBadRequest},
		{"GET", "/api/rooms/api/users", "wrong", "", "", http.StatusForbidden},
	} {
		if res, body := do(t, tc.method, srv.URL+tc.path, tc.token, tc.ctype, tc.body); res.StatusCode != tc.status {
			t.Errorf("%s %.40s (token %q, %s): %s %s; want %d", tc.method, tc.path, tc.token, tc.ctype, res.Status, body, tc.status)
		}
	}
	// Only the one announcement reached the room, and none the outsider.
	if n := len(alice.Events("chat message")); n != 1 {
		t.Errorf("alice got %d chat messages, want the one announcement", n)
	}
	if n := len(outsider.Events("chat message")); n != 0 {
		t.Errorf("a socket in another room got %d chat messages", n)
	}
}
