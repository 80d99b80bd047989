package rally_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
)

// TestRecoveryStoreBounds floods the in-memory recovery store with events
// and with sessions of clients whose connections fail: it keeps at most
// MaxBufferedBytes of events and MaxSessions sessions, and the heap grows
// accordingly, not with the flood.
func TestRecoveryStoreBounds(t *testing.T) {
	const maxBytes, maxSessions = 1 << 20, 100
	srv := startInterop(t, "websocket", &rally.Options{ConnectionStateRecovery: &rally.Recovery{
		MaxBufferedBytes: maxBytes, MaxSessions: maxSessions,
	}}, nil)
	nsp := srv.hub.Of("/")

	before := liveHeap()
	payload := strings.Repeat("x", 10_000)
	const events = 3000 // 30 MB
	for i := range events {
		if err := srv.hub.Emit("news", i, payload); err != nil {
			t.Fatal(err)
		}
	}
	sessions, packets, bytes := rally.RecoveryState(nsp)
	grown := liveHeap() - before
	t.Logf("after %d events of 10 KB: %d kept, %d bytes; heap +%.1f MiB", events, packets, bytes, float64(grown)/(1<<20))
	if bytes > maxBytes || packets > maxBytes/10_000 || packets == 0 {
		t.Errorf("%d events, %d bytes kept; want at most %d bytes", packets, bytes, maxBytes)
	}
	if grown > 4<<20 {
		t.Errorf("the heap grew by %d bytes", grown)
	}

	const clients = 3 * maxSessions
	connected := make(chan struct{}, clients)
	srv.hub.OnConnect(func(*rally.Socket) { connected <- struct{}{} })
	disconnected := make(chan struct{}, clients)
	srv.hub.OnDisconnect(func(*rally.Socket, string) { disconnected <- struct{}{} })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range clients {
		s, err := client.Dial(ctx, srv.url, &client.Options{Transports: []string{client.TransportWebSocket}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
	}
	for range clients {
		<-connected
	}
	before = liveHeap()
	srv.cutConnections(0)
	for i := range clients {
		select {
		case <-disconnected:
		case <-ctx.Done():
			t.Fatalf("%d of %d disconnects seen", i, clients)
		}
	}
	srv.hub.Emit("flush") // the store is pruned as events come
	sessions, _, _ = rally.RecoveryState(nsp)
	t.Logf("%d connections failed: %d sessions kept", clients, sessions)
	if sessions != maxSessions {
		t.Errorf("%d sessions kept, want %d", sessions, maxSessions)
	}
}

// TestRecoveryStoreExpiry checks that sessions and events are forgotten
// after MaxDisconnectionDuration, with no further traffic.
func TestRecoveryStoreExpiry(t *testing.T) {
	srv := startInterop(t, "websocket", &rally.Options{ConnectionStateRecovery: &rally.Recovery{
		MaxDisconnectionDuration: 200 * time.Millisecond,
	}}, nil)
	disconnected := make(chan struct{}, 1)
	srv.hub.OnDisconnect(func(*rally.Socket, string) { disconnected <- struct{}{} })
	s, err := client.Dial(context.Background(), srv.url, &client.Options{Transports: []string{client.TransportWebSocket}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv.hub.Emit("news", 1)
	srv.cutConnections(0)
	<-disconnected
	nsp := srv.hub.Of("/")
	if sessions, packets, _ := rally.RecoveryState(nsp); sessions != 1 || packets != 1 {
		t.Fatalf("after the disconnect: %d sessions, %d events kept; want 1, 1", sessions, packets)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		sessions, packets, bytes := rally.RecoveryState(nsp)
		if sessions == 0 && packets == 0 && bytes == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s later: %d sessions, %d events, %d bytes kept", sessions, packets, bytes)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
