package rally_test

// Interop with the Socket.IO v2 client (socket.io-client 2.x, Engine.IO 3,
// Socket.IO protocol v4) through Options.AllowEIO3: testdata/interop/v2.js
// on polling, websocket and the upgrade, with binary as binary and as
// base64, against rally and against Node's server with allowEIO3: true
// (server.js's "eio3" scenario); and a room of a v2 and a current client.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/internal/nodetest"
)

// v2Modes are the transport modes of v2.js, with and without forceBase64.
var v2Modes = []struct {
	mode string
	b64  bool
}{
	{"default", false}, {"websocket", false}, {"polling", false},
	{"default", true}, {"websocket", true}, {"polling", true},
}

func forEachV2Mode(t *testing.T, f func(t *testing.T, mode string, b64 bool)) {
	nodetest.Node(t)
	for _, m := range v2Modes {
		name := m.mode
		if m.b64 {
			name += "-b64"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, m.mode, m.b64)
		})
	}
}

// v2Handlers registers what server.js's "eio3" scenario registers, and
// returns the salutations received.
func v2Handlers(hub *rally.Hub) <-chan []any {
	salutations := make(chan []any, 8)
	clientScenarioHandlers(hub)
	hub.Of("/private").Use(func(s *rally.Socket) error {
		return &rally.ConnectError{Message: "not authorized", Data: map[string]int{"code": 42}}
	})
	hub.On("salutations", func(s *rally.Socket, text string, who map[string]any, data []byte) {
		salutations <- []any{text, who, data}
	})
	hub.On("whoami", func(s *rally.Socket) map[string]any {
		return map[string]any{"id": s.ID(), "query": map[string]string{"name": s.Handshake().Query.Get("name")}}
	})
	hub.On("tell room", func(s *rally.Socket, room string) error {
		return hub.To(room).Emit("room news", "hi", []byte{1}, map[string]any{"bin": []byte{2}})
	})
	hub.On("poll room", func(s *rally.Socket, room string) ([]any, error) {
		ctx, cancel := context.WithTimeout(s.Context(), 5*time.Second)
		defer cancel()
		replies, err := hub.To(room).EmitWithAck(ctx, "poll", []byte{7})
		var answers []any
		for _, r := range replies {
			answers = append(answers, r.Values())
		}
		slices.SortFunc(answers, func(a, b any) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		return answers, err
	})
	var mu sync.Mutex
	last := ""
	admin := hub.Of("/admin")
	admin.Use(func(s *rally.Socket) error {
		var auth struct{ Token string }
		if err := s.Handshake().DecodeAuth(&auth); err != nil || auth.Token != "secret" {
			return errors.New("bad token")
		}
		return nil
	})
	admin.On("where", func(s *rally.Socket, b []byte) map[string]any {
		var auth map[string]any
		s.Handshake().DecodeAuth(&auth)
		return map[string]any{"nsp": s.Namespace().Name(), "token": auth["token"], "bin": b, "id": s.ID()}
	})
	admin.On("kick me", func(s *rally.Socket) { s.Disconnect(false) })
	admin.OnDisconnect(func(s *rally.Socket, reason string) {
		mu.Lock()
		last = reason
		mu.Unlock()
	})
	hub.On("last reason", func(s *rally.Socket) string {
		mu.Lock()
		defer mu.Unlock()
		return last
	})
	hub.Of("/denied").Use(func(s *rally.Socket) error { return errors.New("go away") })
	return salutations
}

// v2Want is the transcript v2.js prints against rally and Node alike.
func v2Want(mode string) map[string]any {
	transport := "websocket"
	if mode == "polling" {
		transport = "polling"
	}
	return map[string]any{
		"transport": transport,
		"greetings": []any{"Hey!", map[string]any{"ms": "jane"}, buf([]byte{4, 3, 2, 1})},
		"message":   []any{"Hello!"},
		"whoami":    map[string]any{"idIsEngine": true, "clientID": true, "query": map[string]any{"name": "a"}},
		"echo": []any{"text", map[string]any{"bin": buf([]byte{1, 2}), "list": []any{buf([]byte{3}), nil}},
			buf([]byte{4, 5}), 42, -1.5, true, nil},
		"unicode": []any{"héllo € 😀 \u2028", map[string]any{"ключ": "값"}},
		"big":     true,
		"divide":  []any{0.25},
		"failing": []any{map[string]any{"error": "division by zero"}},
		"asked":   []any{map[string]any{"got": buf([]byte{5, 6}), "bin": buf([]byte{9, 8})}},
		"broadcasts": map[string]any{
			"a": []any{[]any{"all news", map[string]any{"bin": buf([]byte{2})}}},
			"b": []any{[]any{"room news", "hi", buf([]byte{1})}, []any{"all news", map[string]any{"bin": buf([]byte{2})}}},
			"c": []any{[]any{"all news", map[string]any{"bin": buf([]byte{2})}}},
		},
		"admin":          map[string]any{"nsp": "/admin", "token": "secret", "bin": buf([]byte{1}), "id": true, "clientID": true},
		"private":        map[string]any{"code": 42},
		"denied":         "go away",
		"nope":           map[string]any{"message": "Invalid namespace"},
		"kicked":         "io server disconnect",
		"left":           "client namespace disconnect",
		"reconnected":    true,
		"stillConnected": true,
	}
}

// v2Transcript runs v2.js's "all" part against url.
func v2Transcript(t *testing.T, url, mode string, b64 bool) map[string]any {
	t.Helper()
	p := v2Node(t, url, mode, b64, "all")
	l := waitEvent(t, p, "transcript", nil)
	tr, _ := l.Get("transcript").(map[string]any)
	return tr
}

// v2Node starts v2.js with part against url.
func v2Node(t *testing.T, url, mode string, b64 bool, part string) *nodetest.Process {
	t.Helper()
	env := []string{"RALLY_URL=" + url, "RALLY_TRANSPORT=" + mode, "RALLY_IDLE_MS=1500"}
	if b64 {
		env = append(env, "RALLY_B64=1")
	}
	p := nodetest.Start(t, "v2.js", nodetest.Options{Args: []string{part}, Env: env, Timeout: 2 * time.Minute})
	t.Cleanup(func() {
		if t.Failed() {
			if stderr := p.Stderr(); stderr != "" {
				t.Logf("v2.js stderr:\n%s", stderr)
			}
		}
	})
	return p
}

func TestInteropV2(t *testing.T) {
	forEachV2Mode(t, func(t *testing.T, mode string, b64 bool) {
		srv := startInterop(t, mode, &rally.Options{AllowEIO3: true}, nil)
		salutations := v2Handlers(srv.hub)
		got := v2Transcript(t, srv.url, mode, b64)
		checkJSON(t, "what the v2 client saw of rally", got, v2Want(mode))
		sal := recv(t, salutations, "the salutations event")
		if sal[0] != "Hello!" || !bytes.Equal(sal[2].([]byte), []byte{1, 2, 3, 4}) {
			t.Errorf("salutations: got %v; want Hello!, 01020304", sal)
		}
		checkJSON(t, "salutations object", sal[1], map[string]any{"mr": "john"})

		// The same script against Node's server with allowEIO3: true.
		node := v2Transcript(t, nodeEIO3Server(t, mode), mode, b64)
		checkJSON(t, "what the v2 client saw of rally and of Node", asBuffers(got), asBuffers(node))
	})
}

// nodeEIO3Server starts server.js's "eio3" scenario with allowEIO3 and
// returns its URL.
func nodeEIO3Server(t *testing.T, mode string) string {
	t.Helper()
	p := nodetest.Start(t, "server.js", nodetest.Options{
		Args:    []string{"eio3"},
		Env:     []string{"RALLY_TRANSPORT=" + mode, "RALLY_EIO3=1"},
		Timeout: 2 * time.Minute,
	})
	return waitEvent(t, p, "listening", nil).Text("url")
}

// A v2 client and a current client in one room each get a broadcast in
// their own framing, and both answer a broadcast with acks.
func TestInteropV2MixedRoom(t *testing.T) {
	forEachV2Mode(t, func(t *testing.T, mode string, b64 bool) {
		srv := startInterop(t, mode, &rally.Options{AllowEIO3: true}, nil)
		v2Handlers(srv.hub)
		p := v2Node(t, srv.url, mode, b64, "mixed")
		l := waitEvent(t, p, "mixed", nil)
		news := []any{"hi", buf([]byte{1}), map[string]any{"bin": buf([]byte{2})}}
		checkJSON(t, "what each client got", asBuffers(l.Get("got")), map[string]any{"v2": news, "v4": news})
		checkJSON(t, "the acks", asBuffers(l.Get("answers")), []any{
			[]any{"v2", buf([]byte{7})}, []any{"v4", buf([]byte{7})},
		})
	})
}

// The client pings and the hub answers: with a ping interval and timeout
// of 200 ms a v2 client stays connected for 1.5 s on every transport,
// its engine getting a pong for each of its pings.
func TestInteropV2Heartbeat(t *testing.T) {
	forEachV2Mode(t, func(t *testing.T, mode string, b64 bool) {
		srv := startInterop(t, mode, &rally.Options{AllowEIO3: true,
			PingInterval: 200 * time.Millisecond, PingTimeout: 200 * time.Millisecond}, nil)
		v2Handlers(srv.hub)
		l := waitEvent(t, v2Node(t, srv.url, mode, b64, "idle"), "idle", nil)
		if l.Get("connected") != true || l.Get("reason") != nil || l.Get("echo") != "still here" {
			t.Errorf("after 1.5 s: %v", l)
		}
		if n, _ := l.Get("pongs").(float64); n < 4 {
			t.Errorf("%v pongs in 1.5 s with a 200 ms ping interval", l.Get("pongs"))
		}
	})
}
