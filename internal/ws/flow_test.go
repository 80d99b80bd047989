package ws

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// framesOf returns n masked text frames of size bytes each, numbered in
// their first bytes, back to back.
func framesOf(n, size int) []byte {
	var b []byte
	for i := range n {
		payload := bytes.Repeat([]byte{'x'}, size)
		copy(payload, fmt.Sprintf("%08d", i))
		b = append(b, clientFrame(fin|opText, payload)...)
	}
	return b
}

// A paused connection reads nothing more than what it had read; once
// resumed, every message arrives, in order.
func TestPauseResume(t *testing.T) {
	forEachMode(t, AcceptOptions{}, func(t *testing.T, opts AcceptOptions) {
		ts := newTestServer(t, opts)
		nc, _, _ := rawDial(t, ts, nil, nil)
		c := ts.accept(t)
		var delivered atomic.Int32
		got := make(chan Message, 1000)
		c.Serve(func(m Message) {
			if delivered.Add(1) == 1 {
				c.Pause()
			}
			got <- m
		}, func(error) {})

		const n, size = 1000, 1000 // 1 MB: far more than one read takes
		nc.SetDeadline(time.Time{})
		go nc.Write(framesOf(n, size)) // blocks once the server stops reading
		waitFor(t, "the first message", func() bool { return delivered.Load() > 0 })
		time.Sleep(200 * time.Millisecond)
		paused := delivered.Load()
		time.Sleep(200 * time.Millisecond)
		if d := delivered.Load(); d != paused || d > 20 {
			t.Fatalf("paused after the first message, yet %d then %d of %d messages were delivered", paused, d, n)
		}
		t.Logf("%d messages delivered while paused (one read's worth)", paused)

		c.Resume()
		for i := range n {
			select {
			case m := <-got:
				if want := fmt.Sprintf("%08d", i); string(m.Data[:8]) != want {
					t.Fatalf("message %d arrived as %s", i, m.Data[:8])
				}
			case <-time.After(waitLimit):
				t.Fatalf("after Resume, %d of %d messages arrived", i, n)
			}
		}
	})
}

// A client that hangs up while its connection is paused is noticed, though
// what it sent before is still unread, and none of it is delivered: a FIN
// that the client's kernel could send (what came before it fits in the
// server's socket buffer), or a reset.
func TestHangUpWhilePaused(t *testing.T) {
	ends := []struct {
		name   string
		frames []byte
		hangUp func(nc *net.TCPConn)
	}{
		{"FIN", framesOf(20, 1000), func(nc *net.TCPConn) { nc.CloseWrite() }},
		{"reset", framesOf(2000, 1000), func(nc *net.TCPConn) { nc.SetLinger(0); nc.Close() }},
	}
	for _, end := range ends {
		t.Run(end.name, func(t *testing.T) {
			forEachMode(t, AcceptOptions{}, func(t *testing.T, opts AcceptOptions) {
				ts := newTestServer(t, opts)
				nc, _, _ := rawDial(t, ts, nil, nil)
				c := ts.accept(t)
				var delivered atomic.Int32
				closed := make(chan error, 1)
				c.Serve(func(m Message) {
					if delivered.Add(1) == 1 {
						c.Pause()
					}
				}, func(err error) { closed <- err })

				nc.SetDeadline(time.Now().Add(time.Second))
				nc.Write(end.frames) // more than the server reads at once; maybe more than its buffers hold
				waitFor(t, "the first message", func() bool { return delivered.Load() > 0 })
				time.Sleep(100 * time.Millisecond)
				before := delivered.Load()
				start := time.Now()
				end.hangUp(nc.(*net.TCPConn))
				select {
				case err := <-closed:
					t.Logf("hang-up noticed after %v: %v", time.Since(start), err)
				case <-time.After(2 * time.Second):
					t.Fatal("the hang-up of a paused connection went unnoticed for 2 s")
				}
				if after := delivered.Load(); after != before {
					t.Fatalf("%d messages delivered after the hang-up", after-before)
				}
			})
		})
	}
}

// stalledClient connects a client that never reads, with a small receive
// buffer so that the server's writes back up quickly.
func stalledClient(t *testing.T, ts *testServer) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	nc, err := d.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	req := "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + sampleKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	return nc
}

// A client that never reads and floods pings, or keeps sending large
// messages, does not delay the replies to another client.
func TestFloodingClientDelaysNoOther(t *testing.T) {
	floods := []struct {
		name  string
		frame []byte
	}{
		{"pings", clientFrame(fin|opPing, []byte("ping"))},
		{"16 KiB messages", clientFrame(fin|opText, bytes.Repeat([]byte{'x'}, 16<<10))},
	}
	for _, flood := range floods {
		t.Run(flood.name, func(t *testing.T) {
			forEachMode(t, AcceptOptions{WriteTimeout: 10 * time.Second}, func(t *testing.T, opts AcceptOptions) {
				ts := newTestServer(t, opts)
				attacker := stalledClient(t, ts)
				ac := ts.accept(t)
				ac.Serve(func(Message) {}, func(error) {}) // its pongs back up
				stop := make(chan struct{})
				done := make(chan struct{})
				go func() {
					defer close(done)
					burst := bytes.Repeat(flood.frame, max(1, (64<<10)/len(flood.frame)))
					attacker.SetWriteDeadline(time.Now().Add(3 * time.Second))
					for {
						select {
						case <-stop:
							return
						default:
						}
						if _, err := attacker.Write(burst); err != nil {
							return
						}
					}
				}()
				defer func() { close(stop); attacker.Close(); <-done }()

				// Enough others that the poller's workers share them.
				ctx := testContext(t)
				const others = 20
				worst := make(chan time.Duration, others)
				errs := make(chan error, others)
				for range others {
					bystander, _, bc := ts.connect(t, ctx, nil)
					defer bystander.CloseNow()
					serve(bc, echo(bc))
					go func() {
						slowest := time.Duration(0)
						for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
							start := time.Now()
							rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
							err := bystander.Write(rctx, websocket.MessageText, []byte("hi"))
							if err == nil {
								_, _, err = bystander.Read(rctx)
							}
							cancel()
							if err != nil {
								errs <- err
								return
							}
							slowest = max(slowest, time.Since(start))
						}
						worst <- slowest
					}()
				}
				slowest := time.Duration(0)
				for range others {
					select {
					case d := <-worst:
						slowest = max(slowest, d)
					case err := <-errs:
						t.Fatalf("a round trip of another client: %v", err)
					}
				}
				t.Logf("the slowest round trip of %d other clients: %v", others, slowest)
				if slowest > time.Second {
					t.Fatalf("another client waited %v for a reply", slowest)
				}
			})
		})
	}
}

// A write to a client that stopped reading fails once it has made no
// progress for WriteTimeout.
func TestWriteStall(t *testing.T) {
	const stall = 300 * time.Millisecond
	forEachMode(t, AcceptOptions{WriteTimeout: stall}, func(t *testing.T, opts AcceptOptions) {
		ts := newTestServer(t, opts)
		stalledClient(t, ts)
		c := ts.accept(t)
		serve(c, nil)
		start := time.Now()
		err := c.WriteMessages(Message{Data: bytes.Repeat([]byte{'x'}, 8<<20)})
		took := time.Since(start)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write to a client that does not read: %v, want a deadline error", err)
		}
		if took < stall || took > stall+2*time.Second {
			t.Fatalf("the stalled write failed after %v, want about %v", took, stall)
		}
	})
}

// A write to a slow reader goes on as long as it makes progress, however
// much longer than WriteTimeout it takes in all.
func TestSlowReaderWithinWriteTimeout(t *testing.T) {
	const stall = 300 * time.Millisecond
	forEachMode(t, AcceptOptions{WriteTimeout: stall}, func(t *testing.T, opts AcceptOptions) {
		ts := newTestServer(t, opts)
		nc := stalledClient(t, ts)
		c := ts.accept(t)
		serve(c, nil)
		const size = 12 << 20 // well beyond what the socket buffers hold
		read := make(chan int64, 1)
		go func() {
			// A few KiB a millisecond: seconds for the message.
			var total int64
			buf := make([]byte, 64<<10)
			for total < size {
				nc.SetReadDeadline(time.Now().Add(waitLimit))
				n, err := nc.Read(buf)
				total += int64(n)
				if err != nil {
					break
				}
				time.Sleep(time.Millisecond)
			}
			read <- total
		}()
		start := time.Now()
		if err := c.WriteMessages(Message{Data: bytes.Repeat([]byte{'x'}, size)}); err != nil {
			t.Fatalf("write to a slow reader: %v after %v", err, time.Since(start))
		}
		took := time.Since(start)
		t.Logf("the write took %v", took)
		if took < 2*stall {
			t.Fatalf("the write took %v only: the test did not outlast the write timeout", took)
		}
		if total := <-read; total < size {
			t.Fatalf("the reader got %d of %d bytes", total, size)
		}
	})
}
