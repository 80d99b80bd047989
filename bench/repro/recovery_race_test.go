// Package repro holds tests that reproduce problems the benchmarks found
// in rally itself. They are skipped unless BENCH_REPRO is set, so that
// `go test ./...` in bench stays about the harness:
//
//	BENCH_REPRO=1 go -C bench test ./repro -run RecoveryReconnect -v
package repro

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/bench/internal/wsclient"
)

// TestRecoveryReconnect cuts a client's TCP connection right after it got
// an event and reconnects with its pid and offset, 300 times in a row.
// Once the server ran the old socket's OnDisconnect handlers, which come
// after the session is persisted, every reconnect is recovered. Right
// away, some are not: the socket leaves the namespace when the close is
// seen, but its session is persisted later, on the socket's dispatch
// goroutine (Socket.close enqueues persist), and a CONNECT handled in
// between finds none, so the client gets a new socket and loses what it
// missed. Node's server, on one event loop, handles the close first: in
// the jitter scenario with down times of 0–5 ms it recovered every
// reconnect, rally about 99.7 %. Here, with GOMAXPROCS of 2 or more,
// 3–7 % of the immediate reconnects are not recovered; with 1, in one
// process, the race rarely shows (it does across processes: the jitter
// scenario's server has one P).
func TestRecoveryReconnect(t *testing.T) {
	if os.Getenv("BENCH_REPRO") == "" {
		t.Skip("reproduces a known rally race; run with BENCH_REPRO=1")
	}
	for _, waitDisconnect := range []bool{true, false} {
		name := "immediately"
		if waitDisconnect {
			name = "after OnDisconnect"
		}
		t.Run(name, func(t *testing.T) {
			hub := rally.NewHub(&rally.Options{
				ConnectionStateRecovery: &rally.Recovery{},
				Logger:                  slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			disconnected := make(chan struct{}, 1000)
			hub.OnDisconnect(func(*rally.Socket, string) { disconnected <- struct{}{} })
			srv := httptest.NewServer(hub)
			defer srv.Close()
			addr := srv.Listener.Addr().String()

			const rounds = 300
			conn, pid := join(t, addr, nil)
			misses := 0
			for i := range rounds {
				if err := hub.Emit("tick", i); err != nil {
					t.Fatal(err)
				}
				offset := readOffset(t, conn)
				conn.Close()
				if waitDisconnect {
					select {
					case <-disconnected:
					case <-time.After(10 * time.Second):
						t.Fatal("no OnDisconnect within 10s")
					}
				}
				auth := fmt.Appendf(nil, `{"pid":%q,"offset":%q}`, pid, offset)
				var newPID string
				conn, newPID = join(t, addr, auth)
				if newPID != pid {
					misses++
				}
				pid = newPID
			}
			conn.Close()
			if misses > 0 {
				t.Errorf("%d of %d reconnects not recovered", misses, rounds)
			}
		})
	}
}

// join opens a session and connects to "/" with auth, returning the
// connection and the pid of the reply.
func join(t *testing.T, addr string, auth []byte) (*wsclient.Conn, string) {
	t.Helper()
	conn, err := wsclient.OpenEngine(addr, wsclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reply, err := conn.Join(auth, 10*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids struct {
		PID string `json:"pid"`
	}
	if err := json.Unmarshal(reply, &ids); err != nil || ids.PID == "" {
		t.Fatalf("CONNECT reply %s: no pid", reply)
	}
	return conn, ids.PID
}

// readOffset reads until a tick arrives and returns its offset.
func readOffset(t *testing.T, conn *wsclient.Conn) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer conn.SetReadDeadline(time.Time{})
	for {
		_, m, err := conn.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if conn.HandleEngine(m) || !bytes.HasPrefix(m, []byte(`42["tick",`)) {
			continue
		}
		off, ok := wsclient.TrailingString(m)
		if !ok {
			t.Fatalf("tick without offset: %s", m)
		}
		return string(off)
	}
}
