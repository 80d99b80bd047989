package rally_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/sockettest"
)

// With CleanupEmptyChildNamespaces a child namespace goes away with its
// last socket, and comes back with the next one.
func TestCleanupEmptyChildNamespaces(t *testing.T) {
	for _, cleanup := range []bool{false, true} {
		hub := rally.NewHub(&rally.Options{CleanupEmptyChildNamespaces: cleanup})
		parent := hub.OfRegexp(regexp.MustCompile(`^/room-\d+$`))
		parent.On("where", func(s *rally.Socket) string { return s.Namespace().Name() })
		srv := sockettest.NewServer(t, hub)
		for round := range 2 {
			c := srv.Dial(t, "/room-7", nil)
			var where string
			if r, err := c.EmitWithAck(ctx5s(t), "where"); err != nil || r.Decode(&where) != nil || where != "/room-7" {
				t.Fatalf("round %d: where %q %v", round, where, err)
			}
			if n := len(parent.Children()); n != 1 {
				t.Fatalf("round %d: %d children while connected", round, n)
			}
			c.Close()
			want := 1
			if cleanup {
				want = 0
			}
			waitUntil(t, "the child's cleanup", func() bool { return len(parent.Children()) == want })
		}
	}
}

// Closing a namespace disconnects its sockets and refuses later CONNECTs.
func TestNamespaceClose(t *testing.T) {
	hub := rally.NewHub(nil)
	admin := hub.Of("/admin")
	reasons := make(chan string, 1)
	admin.OnDisconnect(func(s *rally.Socket, reason string) { reasons <- reason })
	srv := sockettest.NewServer(t, hub)
	c := srv.Dial(t, "/admin", &client.Options{Transports: []string{client.TransportWebSocket}})
	if err := admin.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-reasons:
		if r != rally.ReasonServerNamespaceDisconnect {
			t.Fatalf("reason %q", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the socket was not disconnected")
	}
	waitUntil(t, "the client's disconnect", func() bool { return !c.Connected() })
	again := srv.Socket(t, "/admin", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := again.Connect(ctx); err == nil {
		t.Fatal("a closed namespace took a new socket")
	} else {
		t.Logf("connecting to the closed namespace: %v", err)
	}
}
