package rally_test

// Micro benchmarks of rally's hot paths through its exported API:
//
//	go test -run '^$' -bench . -benchmem .
//
// BenchmarkBroadcast measures a whole broadcast, from hub.Emit until every
// recipient read the frame, with allocation-free raw websocket clients in
// the same process, so allocs/op are the server's. The design wants them
// not to grow with the number of recipients; allocs/recipient shows
// whether they do.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/sockettest"
)

type benchTick struct {
	T int64  `json:"t"`
	I int    `json:"i"`
	P string `json:"p"`
}

var benchPayload = benchTick{T: 1700000000123456, I: 42, P: strings.Repeat("x", 32)}

func benchHub() *rally.Hub { return benchHubWith(rally.Options{}) }

// benchHubWith is benchHub with options.
func benchHubWith(opts rally.Options) *rally.Hub {
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return rally.NewHub(&opts)
}

// benchConn is a websocket client written for benchmarks: it joins "/"
// over a websocket-only session and then reads frames into one reused
// buffer, allocating nothing per message.
type benchConn struct {
	nc   net.Conn
	br   *bufio.Reader
	msg  []byte
	hdr  []byte // frame header scratch, allocated once
	wbuf []byte
	wmu  sync.Mutex
}

func benchDial(tb testing.TB, httpURL string) *benchConn {
	tb.Helper()
	c := benchOpen(tb, httpURL)
	c.send([]byte("40"))
	c.joined(tb, func(m []byte) bool { return bytes.HasPrefix(m, []byte("40")) })
	return c
}

// benchOpen opens a websocket Engine.IO session, not yet joined to any
// namespace, with a deadline that joined clears.
func benchOpen(tb testing.TB, httpURL string) *benchConn {
	tb.Helper()
	addr := strings.TrimPrefix(httpURL, "http://")
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(nc, "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: %s\r\n"+
		"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: YmVuY2htYXJrLWtleS0xMg==\r\n"+
		"Sec-WebSocket-Version: 13\r\n\r\n", addr)
	c := &benchConn{nc: nc, br: bufio.NewReaderSize(nc, 4096), hdr: make([]byte, 8)}
	status, err := c.br.ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 101") {
		tb.Fatalf("upgrade: %q %v", status, err)
	}
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			tb.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	if m, err := c.next(); err != nil || m[0] != '0' {
		tb.Fatalf("open packet: %q %v", m, err)
	}
	return c
}

// joined reads until the CONNECT reply, which isReply recognizes, and
// clears the connection's deadline.
func (c *benchConn) joined(tb testing.TB, isReply func(m []byte) bool) {
	tb.Helper()
	for {
		m, err := c.next()
		if err != nil {
			tb.Fatalf("waiting for CONNECT: %v", err)
		}
		if isReply(m) {
			break
		}
	}
	c.nc.SetDeadline(time.Time{})
}

// next returns the next Engine.IO packet other than a ping (answered). The
// server sends unfragmented, unmasked frames.
func (c *benchConn) next() ([]byte, error) {
	for {
		h := c.hdr[:2]
		if _, err := io.ReadFull(c.br, h); err != nil {
			return nil, err
		}
		op, n := h[0]&0x0F, int(h[1]&0x7F)
		switch n {
		case 126:
			x := c.hdr[:2]
			if _, err := io.ReadFull(c.br, x); err != nil {
				return nil, err
			}
			n = int(x[0])<<8 | int(x[1])
		case 127:
			x := c.hdr[:8]
			if _, err := io.ReadFull(c.br, x); err != nil {
				return nil, err
			}
			n = 0
			for _, v := range x {
				n = n<<8 | int(v)
			}
		}
		if cap(c.msg) < n {
			c.msg = make([]byte, n)
		}
		c.msg = c.msg[:n]
		if _, err := io.ReadFull(c.br, c.msg); err != nil {
			return nil, err
		}
		switch {
		case op == 0x8:
			return nil, io.EOF
		case op >= 0x8:
			continue
		}
		if len(c.msg) == 1 && c.msg[0] == '2' {
			c.send([]byte("3"))
			continue
		}
		return c.msg, nil
	}
}

// send writes a masked text frame (with a zero mask key: the payload is
// unchanged).
func (c *benchConn) send(p []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := append(c.wbuf[:0], 0x81)
	switch {
	case len(p) < 126:
		b = append(b, 0x80|byte(len(p)))
	default:
		b = append(b, 0x80|126, byte(len(p)>>8), byte(len(p)))
	}
	b = append(b, 0, 0, 0, 0)
	b = append(b, p...)
	c.wbuf = b
	c.nc.Write(b)
}

// benchFleet is n clients whose readers count the events they receive.
type benchFleet struct {
	conns  []*benchConn
	got    atomic.Int64
	target atomic.Int64
	done   chan struct{}
	wg     sync.WaitGroup
}

func newBenchFleet(b *testing.B, srv *sockettest.Server, n int) *benchFleet {
	f := &benchFleet{done: make(chan struct{}, 1)}
	for range n {
		c := benchDial(b, srv.URL)
		f.conns = append(f.conns, c)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for {
				m, err := c.next()
				if err != nil {
					return
				}
				if len(m) > 1 && m[0] == '4' && m[1] == '2' && f.got.Add(1) == f.target.Load() {
					f.done <- struct{}{}
				}
			}
		}()
	}
	b.Cleanup(func() {
		for _, c := range f.conns {
			c.nc.Close()
		}
		f.wg.Wait()
	})
	return f
}

// expect raises the number of events to wait for by n.
func (f *benchFleet) expect(n int) { f.target.Add(int64(n)) }

func (f *benchFleet) wait(b *testing.B) {
	select {
	case <-f.done:
	case <-time.After(10 * time.Second):
		b.Fatalf("delivered %d of %d", f.got.Load(), f.target.Load())
	}
}

func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// BenchmarkBroadcast is hub.Emit to every socket, until each client has
// read the event.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run("recipients="+strconv.Itoa(n), func(b *testing.B) {
			benchBroadcast(b, benchHub(), n)
		})
	}
}

// BenchmarkBroadcastRecovery is BenchmarkBroadcast with connection state
// recovery on: each event is also kept, with an offset, for clients that
// may reconnect.
func BenchmarkBroadcastRecovery(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run("recipients="+strconv.Itoa(n), func(b *testing.B) {
			benchBroadcast(b, benchHubWith(rally.Options{ConnectionStateRecovery: &rally.Recovery{}}), n)
		})
	}
}

// benchBroadcast measures hub.Emit to n clients.
func benchBroadcast(b *testing.B, hub *rally.Hub, n int) {
	srv := sockettest.NewServer(b, hub)
	f := newBenchFleet(b, srv, n)
	b.ReportAllocs()
	before := mallocs()
	for b.Loop() {
		f.expect(n)
		if err := hub.Emit("tick", benchPayload); err != nil {
			b.Fatal(err)
		}
		f.wait(b)
	}
	allocs := float64(mallocs()-before) / float64(b.N)
	b.ReportMetric(allocs/float64(n), "allocs/recipient")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
}

// BenchmarkBroadcastBurst queues 10 broadcasts back to back before
// waiting, as a server pushing updates does; one op is one broadcast.
func BenchmarkBroadcastBurst(b *testing.B) {
	const burst = 10
	for _, n := range []int{100, 1000} {
		b.Run("recipients="+strconv.Itoa(n), func(b *testing.B) {
			hub := benchHub()
			srv := sockettest.NewServer(b, hub)
			f := newBenchFleet(b, srv, n)
			b.ReportAllocs()
			before := mallocs()
			ops := 0
			for b.Loop() {
				ops++
				f.expect(n)
				hub.Emit("tick", benchPayload)
				if ops%burst == 0 {
					f.wait(b)
				}
			}
			if ops%burst != 0 {
				f.wait(b)
			}
			allocs := float64(mallocs()-before) / float64(b.N)
			b.ReportMetric(allocs/float64(n), "allocs/recipient")
		})
	}
}

// BenchmarkNewPacket encodes an event with the exported encoder, as every
// emit does first.
func BenchmarkNewPacket(b *testing.B) {
	b.Run("struct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rally.NewPacket("tick", benchPayload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("string+number+map", func(b *testing.B) {
		m := map[string]any{"room": "lobby", "n": 3}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rally.NewPacket("chat", "hello", 42, m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("binary", func(b *testing.B) {
		blob := bytes.Repeat([]byte{7}, 1024)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rally.NewPacket("upload", "name", blob); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkReplyDecode decodes arguments into typed Go values, the
// decoding handlers' parameters go through.
func BenchmarkReplyDecode(b *testing.B) {
	raw, _ := json.Marshal(benchPayload)
	b.Run("struct", func(b *testing.B) {
		r := rally.NewReply([]json.RawMessage{raw}, nil)
		b.ReportAllocs()
		for b.Loop() {
			var v benchTick
			if err := r.Decode(&v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("string+float64", func(b *testing.B) {
		r := rally.NewReply([]json.RawMessage{json.RawMessage(`"hello"`), json.RawMessage(`3.5`)}, nil)
		b.ReportAllocs()
		for b.Loop() {
			var s string
			var f float64
			if err := r.Decode(&s, &f); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("binary", func(b *testing.B) {
		r := rally.NewReply([]json.RawMessage{json.RawMessage(`{"_placeholder":true,"num":0}`)}, [][]byte{bytes.Repeat([]byte{7}, 1024)})
		b.ReportAllocs()
		for b.Loop() {
			var data []byte
			if err := r.Decode(&data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEventAck is one event with an ack from one client, handled by
// a typed handler: the client's frame is read, decoded, dispatched to the
// socket's goroutine, its arguments decoded into the handler's parameter
// types, the result encoded as the ack and written back.
func BenchmarkEventAck(b *testing.B) {
	cases := []struct {
		name    string
		handler any
		args    string
	}{
		{"struct", func(s *rally.Socket, v benchTick) benchTick { return v },
			`{"t":1700000000123456,"i":42,"p":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`},
		{"string+float64", func(s *rally.Socket, a string, x float64) (float64, error) { return x, nil },
			`"hello",3.5`},
		{"variadic-any", func(s *rally.Socket, args ...any) []any { return args },
			`{"t":1700000000123456,"i":42,"p":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			hub := benchHub()
			hub.On("echo", tc.handler)
			srv := sockettest.NewServer(b, hub)
			c := benchDial(b, srv.URL)
			b.Cleanup(func() { c.nc.Close() })
			var msg []byte
			b.ReportAllocs()
			id := 0
			for b.Loop() {
				id++
				msg = append(msg[:0], "42"...)
				msg = strconv.AppendInt(msg, int64(id), 10)
				msg = append(msg, `["echo",`...)
				msg = append(msg, tc.args...)
				msg = append(msg, ']')
				c.send(msg)
				for {
					m, err := c.next()
					if err != nil {
						b.Fatal(err)
					}
					if bytes.HasPrefix(m, []byte("43")) {
						break
					}
				}
			}
		})
	}
}
