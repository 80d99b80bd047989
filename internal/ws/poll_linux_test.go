//go:build linux

package ws

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/coder/websocket"
)

func init() {
	pollerWatching = func() (int, bool) {
		polling.Lock()
		defer polling.Unlock()
		if polling.p == nil {
			return 0, false
		}
		return len(polling.p.conns), true
	}
}

// watched reports whether the poller watches c.
func watched(c *Conn) bool {
	polling.Lock()
	defer polling.Unlock()
	if polling.p == nil {
		return false
	}
	for _, w := range polling.p.conns {
		if w == c {
			return true
		}
	}
	return false
}

// TestPollerLifecycle checks that the first served connection starts the
// poller, that it watches every served connection, and that it stops when
// the last one is gone, then starts again.
func TestPollerLifecycle(t *testing.T) {
	if n, running := pollerWatching(); running {
		t.Fatalf("poller running before the test, watching %d connections", n)
	}
	for round := range 2 {
		ts := newTestServer(t, AcceptOptions{})
		ctx := testContext(t)
		var clients []*websocket.Conn
		var servers []*served
		for range 3 {
			conn, _, c := ts.connect(t, ctx, nil)
			if watched(c) {
				t.Fatalf("round %d: connection watched before Serve", round)
			}
			servers = append(servers, serve(c, echo(c)))
			if !watched(c) {
				t.Fatalf("round %d: served connection not watched", round)
			}
			clients = append(clients, conn)
		}
		if n, running := pollerWatching(); !running || n != 3 {
			t.Fatalf("round %d: poller running %v, watching %d, want 3", round, running, n)
		}
		for i, conn := range clients {
			roundTrip(t, ctx, conn, websocket.MessageText, []byte("hi"))
			if err := conn.Close(websocket.StatusNormalClosure, ""); err != nil {
				t.Fatal(err)
			}
			servers[i].waitClose(t)
			n, running := pollerWatching()
			if left := len(clients) - i - 1; left > 0 && (!running || n != left) {
				t.Fatalf("round %d: poller running %v, watching %d, want %d", round, running, n, left)
			}
		}
		waitFor(t, "the poller to stop", func() bool {
			_, running := pollerWatching()
			return !running
		})
	}
}

// TestNoPollerNotWatched checks that AcceptOptions.NoPoller keeps a
// connection out of the poller.
func TestNoPollerNotWatched(t *testing.T) {
	ts := newTestServer(t, AcceptOptions{NoPoller: true})
	ctx := testContext(t)
	conn, _, c := ts.connect(t, ctx, nil)
	s := serve(c, echo(c))
	roundTrip(t, ctx, conn, websocket.MessageBinary, []byte{1, 2, 3})
	if watched(c) {
		t.Error("connection with NoPoller is watched by the poller")
	}
	if _, running := pollerWatching(); running {
		t.Error("poller running for a NoPoller connection")
	}
	conn.Close(websocket.StatusNormalClosure, "")
	s.waitClose(t)
}

// tcpState returns the state of the TCP socket under nc (TCP_INFO).
func tcpState(t *testing.T, nc net.Conn) uint8 {
	t.Helper()
	rc, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info syscall.TCPInfo
	var errno syscall.Errno
	err = rc.Control(func(fd uintptr) {
		size := uint32(unsafe.Sizeof(info))
		_, _, errno = syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
			uintptr(unsafe.Pointer(&info)), uintptr(unsafe.Pointer(&size)), 0)
	})
	if err != nil || errno != 0 {
		t.Fatalf("getsockopt TCP_INFO: %v %v", err, errno)
	}
	return info.State
}

const tcpCloseWait = 8 // the peer's FIN was received

// TestEOFAfterData checks that a peer that sends a last message and goes
// away is noticed when the message and the end of the stream are read
// together: with an edge-triggered registration nothing will signal the
// end of the stream again.
func TestEOFAfterData(t *testing.T) {
	forEachMode(t, AcceptOptions{}, func(t *testing.T, opts AcceptOptions) {
		ts := newTestServer(t, opts)
		nc, _, _ := rawDial(t, ts, nil, nil)
		c := ts.accept(t)
		if _, err := nc.Write(clientFrame(fin|opText, []byte("last"))); err != nil {
			t.Fatal(err)
		}
		nc.Close() // no close frame: the client just goes
		waitFor(t, "the FIN to reach the server", func() bool { return tcpState(t, c.nc) == tcpCloseWait })

		s := serve(c, nil)
		if m := s.next(t); string(m.Data) != "last" {
			t.Fatalf("served %q, want \"last\"", m.Data)
		}
		// The end of the stream is already there: it takes no longer
		// than the message did.
		select {
		case err := <-s.closeErr:
			if !errors.Is(err, io.EOF) {
				t.Fatalf("onClose got %v, want io.EOF", err)
			}
		case <-time.After(time.Second):
			t.Fatal("onClose not called: the end of the stream after the last message was missed")
		}
	})
}
