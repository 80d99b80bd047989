package rally_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/sockettest"
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
		s, err := client.Dial(ctx, srv.url, &client.Options{Transports: []string{client.TransportWebSocket}, DisableReconnection: true})
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
	s, err := client.Dial(context.Background(), srv.url, &client.Options{Transports: []string{client.TransportWebSocket}, DisableReconnection: true})
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

// TestRecoveryImmediateReconnect reconnects a client the moment it closed
// its connection, 300 times: the server may handle the new CONNECT before
// it saw the old connection end, or before it kept the old socket's
// session. Every reconnect must be recovered all the same.
func TestRecoveryImmediateReconnect(t *testing.T) {
	hub := rally.NewHub(&rally.Options{ConnectionStateRecovery: &rally.Recovery{}})
	srv := sockettest.NewServer(t, hub)
	join := func(auth string) (r *rawConn, sid, pid string) {
		r = dialRaw(t, srv)
		r.text("40" + auth)
		reply := r.read()
		var ids struct{ SID, PID string }
		if !strings.HasPrefix(reply, "40") || json.Unmarshal([]byte(reply[2:]), &ids) != nil || ids.PID == "" {
			t.Fatalf("CONNECT reply %q", reply)
		}
		return r, ids.SID, ids.PID
	}
	r, sid, pid := join("")
	const rounds = 300
	misses := 0
	for i := range rounds {
		hub.Emit("tick", i)
		var args []any
		for {
			m := r.read()
			if strings.HasPrefix(m, `42["tick"`) {
				if err := json.Unmarshal([]byte(m[2:]), &args); err != nil || len(args) != 3 || args[1] != float64(i) {
					t.Fatalf("tick %d: %q", i, m)
				}
				break
			}
		}
		r.c.CloseNow()
		auth, _ := json.Marshal(map[string]string{"pid": pid, "offset": args[2].(string)})
		var newSID, newPID string
		r, newSID, newPID = join(string(auth))
		if newSID != sid || newPID != pid {
			misses++
		}
		sid, pid = newSID, newPID
	}
	r.c.CloseNow()
	if misses > 0 {
		t.Errorf("%d of %d immediate reconnects not recovered", misses, rounds)
	}
}

// TestOnConnectRunsWhenTheClientLeavesAtOnce connects clients that send
// DISCONNECT the moment they read the CONNECT reply: each socket's
// OnConnect handlers still run, before its OnDisconnect handlers, with and
// without recovery. (TestDisconnect caught a version that skipped them
// when the DISCONNECT was handled before the OnConnect handlers started,
// about one run in ten under load.)
func TestOnConnectRunsWhenTheClientLeavesAtOnce(t *testing.T) {
	for _, recovery := range []*rally.Recovery{nil, {}} {
		hub := rally.NewHub(&rally.Options{ConnectionStateRecovery: recovery})
		var connects, joined atomic.Int64
		done := make(chan struct{}, 1)
		hub.OnConnect(func(s *rally.Socket) {
			connects.Add(1)
			s.Join("kept")
		})
		hub.OnDisconnect(func(s *rally.Socket, reason string) {
			if slices.Contains(s.Rooms(), "kept") {
				joined.Add(1)
			}
			done <- struct{}{}
		})
		srv := sockettest.NewServer(t, hub)
		const rounds = 200
		for range rounds {
			r := dialRaw(t, srv)
			r.text("40")
			if reply := r.read(); !strings.HasPrefix(reply, "40") {
				t.Fatalf("CONNECT reply %q", reply)
			}
			r.text("41")
			<-done
			r.c.CloseNow()
		}
		if connects.Load() != rounds || joined.Load() != rounds {
			t.Errorf("recovery %v: %d OnConnect runs and %d sockets in their room at OnDisconnect, of %d", recovery != nil, connects.Load(), joined.Load(), rounds)
		}
	}
}
