package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/stdexample/chat"
	"github.com/rallyhq/rally/stdexample/chat/chattest"
)

// The chat's behaviour, through the Go client, on each transport.

var transports = map[string][]string{
	"polling":   {client.TransportPolling},
	"websocket": {client.TransportWebSocket},
	"upgrade":   nil, // polling, then websocket, as browsers do
}

func forEachTransport(t *testing.T, test func(t *testing.T, tr []string)) {
	for _, name := range []string{"polling", "websocket", "upgrade"} {
		t.Run(name, func(t *testing.T) { test(t, transports[name]) })
	}
}

// nicknames returns the nicknames of a user list.
func nicknames(users []chat.Member) []string {
	var out []string
	for _, u := range users {
		out = append(out, u.Nickname)
	}
	return out
}

// usersAre matches a "users" event for room listing exactly names.
func usersAre(room string, names ...string) func(rally.Reply) bool {
	return func(r rally.Reply) bool {
		var info chat.RoomInfo
		return r.Decode(&info) == nil && info.Room == room && slices.Equal(nicknames(info.Users), names)
	}
}

func TestGreetingsAndEcho(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr []string) {
		srv, logs := startApp(t, chat.Config{Token: testToken})
		c := chattest.Connect(t, srv.URL, &client.Options{Transports: tr})

		var text string
		var who map[string]string
		var data []byte
		if err := c.Wait("greetings", nil).Decode(&text, &who, &data); err != nil {
			t.Fatal(err)
		}
		if text != "Hey!" || who["ms"] != "jane" || !bytes.Equal(data, []byte{4, 3, 2, 1}) {
			t.Errorf("greetings %q %v %v, want Hey! map[ms:jane] [4 3 2 1]", text, who, data)
		}

		// "message" comes back as sent, binary included.
		c.Send("Hello!", []byte{1, 2, 3})
		var echoed string
		var bin []byte
		if err := c.Wait("message", nil).Decode(&echoed, &bin); err != nil {
			t.Fatal(err)
		}
		if echoed != "Hello!" || !bytes.Equal(bin, []byte{1, 2, 3}) {
			t.Errorf("echo %q %v, want Hello! [1 2 3]", echoed, bin)
		}

		c.Emit("salutations", "Hello!", map[string]string{"mr": "john"}, []byte{1, 2, 3, 4})
		logs.Wait(t, `msg="chat: salutations"`, `text=Hello! who=map[mr:john] data="[1 2 3 4]"`)
	})
}

func TestRoomChat(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr []string) {
		srv, _ := startApp(t, chat.Config{Token: testToken})
		alice := chattest.Connect(t, srv.URL, &client.Options{Transports: tr, Auth: map[string]string{"nickname": "alice"}})
		bob := chattest.Connect(t, srv.URL, &client.Options{Transports: tr})
		carol := chattest.Connect(t, srv.URL, &client.Options{Transports: tr, Auth: map[string]string{"nickname": "carol"}})

		var nick string
		bob.MustAck(&nick, "set nickname", "  bob  ")
		if nick != "bob" {
			t.Errorf("set nickname answered %q, want the trimmed bob", nick)
		}

		var info chat.RoomInfo
		alice.MustAck(&info, "join", "lobby")
		if info.Room != "lobby" || !slices.Equal(nicknames(info.Users), []string{"alice"}) {
			t.Errorf("alice joined %+v, want lobby with alice alone", info)
		}
		bob.MustAck(&info, "join", "lobby")
		if !slices.Equal(nicknames(info.Users), []string{"alice", "bob"}) {
			t.Errorf("bob joined %+v, want alice and bob", info)
		}
		alice.Wait("users", usersAre("lobby", "alice", "bob"))
		carol.MustAck(nil, "join", "elsewhere")

		// A text message reaches the others in the room, not the sender
		// (it gets the Message as the ack), nor other rooms.
		var sent chat.Message
		alice.MustAck(&sent, "chat message", "lobby", " hi bob ")
		if sent.Text != "hi bob" || sent.From != "alice" || sent.ID != alice.ID() || sent.Room != "lobby" {
			t.Errorf("alice's ack is %+v", sent)
		}
		var got chat.Message
		if err := bob.Wait("chat message", nil).Decode(&got); err != nil {
			t.Fatal(err)
		}
		if got.Text != "hi bob" || got.From != "alice" || got.ID != alice.ID() {
			t.Errorf("bob got %+v, want alice's hi bob", got)
		}

		// Binary: a file's bytes travel as an attachment both ways.
		data := make([]byte, 70_000)
		for i := range data {
			data[i] = byte(i * 7)
		}
		var ack struct {
			Name string `json:"name"`
			Size int    `json:"size"`
		}
		bob.MustAck(&ack, "file", "lobby", map[string]any{"name": "blob.bin", "type": "application/octet-stream", "data": data})
		if ack.Name != "blob.bin" || ack.Size != len(data) {
			t.Errorf("bob's file ack is %+v, want blob.bin of %d bytes", ack, len(data))
		}
		var f chat.File
		if err := alice.Wait("file", nil).Decode(&f); err != nil {
			t.Fatal(err)
		}
		if f.From != "bob" || f.Name != "blob.bin" || f.Size != len(data) || !bytes.Equal(f.Data, data) {
			t.Errorf("alice got the file %s from %s, %d bytes (size %d), want bob's %d bytes", f.Name, f.From, len(f.Data), f.Size, len(data))
		}

		// Nothing reached carol, in another room, nor the senders.
		if n := len(carol.Events("chat message")) + len(carol.Events("file")); n != 0 {
			t.Errorf("carol, in another room, got %d messages", n)
		}
		if len(alice.Events("chat message")) != 0 || len(bob.Events("file")) != 0 {
			t.Errorf("a sender got its own message back as an event")
		}

		// A nickname change, a departure and a disconnection update the
		// list.
		alice.MustAck(nil, "set nickname", "alicia")
		bob.Wait("users", usersAre("lobby", "alicia", "bob"))
		alice.MustAck(nil, "leave", "lobby")
		bob.Wait("users", usersAre("lobby", "bob"))
		if err := alice.Ack(nil, "chat message", "lobby", "still here?"); err == nil {
			t.Error("alice could post to a room she left")
		}
		carol.MustAck(nil, "join", "lobby")
		bob.Close()
		carol.Wait("users", usersAre("lobby", "carol"))
	})
}

// TestInvalidInput checks that the chat acks bad input with an error.
func TestInvalidInput(t *testing.T) {
	srv, _ := startApp(t, chat.Config{})
	c := chattest.Connect(t, srv.URL, nil)
	c.MustAck(nil, "join", "room")
	long := string(bytes.Repeat([]byte("x"), 40))
	for _, tc := range []struct {
		event string
		args  []any
	}{
		{"set nickname", []any{"   "}},
		{"set nickname", []any{long}},
		{"set nickname", []any{"tab	here"}},
		{"join", []any{""}},
		{"join", []any{long}},
		{"leave", []any{""}},
		{"chat message", []any{"room", "  "}},
		{"chat message", []any{"not-joined", "hello"}},
		{"file", []any{"room", map[string]any{"name": "empty", "data": []byte{}}}},
		{"file", []any{"room", map[string]any{"name": "big", "data": make([]byte, chat.MaxFile+1)}}},
		{"file", []any{"not-joined", map[string]any{"name": "x", "data": []byte{1}}}},
		{"no such event", nil},
	} {
		err := c.Ack(nil, tc.event, tc.args...)
		var ackErr *rally.AckError
		if !errors.As(err, &ackErr) {
			t.Errorf("%s %.40v: ack error %v, want an error ack", tc.event, tc.args, err)
		}
	}
	// The client is still in, and served.
	var nick string
	c.MustAck(&nick, "set nickname", "fine")
	if nick != "fine" {
		t.Errorf("set nickname answered %q after the errors", nick)
	}
}

// TestAuth checks the two gates: the HTTP middleware (token in the query
// or the Authorization header) and the connect middleware (token in the
// auth payload, guests refused with RequireToken).
func TestAuth(t *testing.T) {
	srv, _ := startApp(t, chat.Config{Token: testToken})
	strict, _ := startApp(t, chat.Config{Token: testToken, RequireToken: true})

	member := func(t *testing.T, c *chattest.Client) bool {
		t.Helper()
		var info chat.RoomInfo
		c.MustAck(&info, "join", "auth")
		for _, u := range info.Users {
			if u.ID == c.ID() {
				return u.Member
			}
		}
		t.Fatalf("%s is not in the user list %+v", c.ID(), info.Users)
		return false
	}
	bearer := http.Header{"Authorization": {"Bearer " + testToken}}

	t.Run("guest", func(t *testing.T) {
		c := chattest.Connect(t, srv.URL, nil)
		if member(t, c) {
			t.Error("a client without a token is a member")
		}
	})
	t.Run("query token", func(t *testing.T) {
		c := chattest.Connect(t, srv.URL, &client.Options{Query: url.Values{"token": {testToken}}})
		if !member(t, c) {
			t.Error("a client with the token in the query is a guest")
		}
	})
	t.Run("bearer token", func(t *testing.T) {
		c := chattest.Connect(t, strict.URL, &client.Options{Header: bearer})
		if !member(t, c) {
			t.Error("a client with the token in the header is a guest")
		}
	})
	t.Run("auth token", func(t *testing.T) {
		c := chattest.Connect(t, strict.URL, &client.Options{Auth: map[string]string{"token": testToken}})
		if !member(t, c) {
			t.Error("a client with the token in its auth payload is a guest")
		}
	})
	t.Run("wrong query token", func(t *testing.T) {
		// Refused by the HTTP middleware: the handshake gets 403.
		err := chattest.Refused(t, srv.URL, &client.Options{Query: url.Values{"token": {"wrong"}}})
		var ce *rally.ConnectError
		if errors.As(err, &ce) {
			t.Errorf("got a connect error %v, want the handshake refused", err)
		}
	})
	for _, tc := range []struct {
		name string
		url  string
		auth any
		code string
	}{
		{"wrong auth token", srv.URL, map[string]string{"token": "wrong"}, "invalid_token"},
		{"guest refused", strict.URL, nil, "auth_required"},
		{"bad nickname", srv.URL, map[string]string{"nickname": ""}, "bad_nickname"},
		{"malformed auth", srv.URL, map[string]any{"token": 42}, "bad_auth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := chattest.Refused(t, tc.url, &client.Options{Auth: tc.auth})
			var ce *rally.ConnectError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *rally.ConnectError", err)
			}
			if got := string(mustJSON(t, ce.Data)); got != `{"code":"`+tc.code+`"}` {
				t.Errorf("refused with %q, data %s; want code %s", ce.Message, got, tc.code)
			}
		})
	}
}

// mustJSON returns the JSON text of v: a client's ConnectError holds its
// data as JSON already.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	switch v := v.(type) {
	case json.RawMessage:
		return v
	case []byte:
		return v
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
