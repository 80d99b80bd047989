package main

import (
	"context"
	"testing"

	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/stdexample/chat"
	"github.com/rallyhq/rally/stdexample/chat/chattest"
)

// Two instances sharing a Redis server serve one chat: users, messages
// and files cross from one to the other.
func TestTwoInstancesShareOneChat(t *testing.T) {
	addr := chattest.StartRedis(t)
	var urls []string
	for range 2 {
		cfg := chat.Config{Token: testToken, Redis: addr}
		node, closeRedis := chat.UseRedis(&cfg)
		t.Cleanup(func() { closeRedis() }) // after the app's cleanup: cleanups run last first
		srv, _ := startApp(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), chattest.Timeout)
		defer cancel()
		if err := node.Ready(ctx); err != nil {
			t.Fatalf("subscribing to Redis: %v", err)
		}
		urls = append(urls, srv.URL)
	}
	alice := chattest.Connect(t, urls[0], &client.Options{Auth: map[string]string{"token": testToken}})
	bob := chattest.Connect(t, urls[1], &client.Options{Transports: []string{client.TransportWebSocket}})
	alice.MustAck(nil, "set nickname", "alice")
	bob.MustAck(nil, "set nickname", "bob")
	alice.MustAck(nil, "join", "lobby")

	// Bob, on the other instance, sees alice in the room, and she sees him
	// arrive.
	var info chat.RoomInfo
	bob.MustAck(&info, "join", "lobby")
	alice.Wait("users", usersAre("lobby", "alice", "bob"))
	if got := nicknames(info.Users); len(got) != 2 || got[0] != "alice" || got[1] != "bob" {
		t.Fatalf("bob joined and sees %v", got)
	}

	alice.MustAck(nil, "chat message", "lobby", "hi bob")
	m := bob.Wait("chat message", nil)
	var msg chat.Message
	if err := m.Decode(&msg); err != nil || msg.Text != "hi bob" || msg.From != "alice" {
		t.Fatalf("bob got %+v %v", msg, err)
	}
	bob.MustAck(nil, "file", "lobby", map[string]any{"name": "b.bin", "type": "application/octet-stream", "data": []byte{1, 2, 3}})
	var f chat.File
	if err := alice.Wait("file", nil).Decode(&f); err != nil || f.From != "bob" || string(f.Data) != "\x01\x02\x03" {
		t.Fatalf("alice got %+v %v", f, err)
	}
}
