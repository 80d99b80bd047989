package metrics_test

// What the exporter costs a hub: the root's BenchmarkBroadcast and
// BenchmarkEventAck, with and without a Collector observing the hub.
//
//	go test -run '^$' -bench . -benchmem

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/metrics"
)

// benchServer serves a hub, observed by a Collector when exported is set,
// until b ends.
func benchServer(b *testing.B, exported bool) (*rally.Hub, string) {
	hub := rally.NewHub(&rally.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if exported {
		metrics.New(hub, nil)
	}
	ts := httptest.NewServer(hub)
	b.Cleanup(func() {
		hub.Close()
		ts.Close()
	})
	return hub, ts.URL
}

// wsConn is a websocket client on raw TCP that joins "/" and reads
// frames into one reused buffer, so that allocations are the server's.
type wsConn struct {
	nc  net.Conn
	br  *bufio.Reader
	msg []byte
	hdr [8]byte
	wmu sync.Mutex
	out []byte
}

func dialWS(b *testing.B, httpURL string) *wsConn {
	addr := strings.TrimPrefix(httpURL, "http://")
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(nc, "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"+
		"Connection: Upgrade\r\nSec-WebSocket-Key: bWV0cmljcy1iZW5jaC0xMg==\r\nSec-WebSocket-Version: 13\r\n\r\n", addr)
	c := &wsConn{nc: nc, br: bufio.NewReader(nc)}
	if status, err := c.br.ReadString('\n'); err != nil || !strings.HasPrefix(status, "HTTP/1.1 101") {
		b.Fatalf("upgrade: %q %v", status, err)
	}
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	if m, err := c.read(); err != nil || m[0] != '0' {
		b.Fatalf("open: %q %v", m, err)
	}
	c.write([]byte("40"))
	for {
		m, err := c.read()
		if err != nil {
			b.Fatalf("CONNECT: %v", err)
		}
		if bytes.HasPrefix(m, []byte("40")) {
			break
		}
	}
	nc.SetDeadline(time.Time{})
	b.Cleanup(func() { nc.Close() })
	return c
}

// read returns the next Engine.IO packet but pings, which it answers.
// The server's frames are whole and unmasked.
func (c *wsConn) read() ([]byte, error) {
	for {
		if _, err := io.ReadFull(c.br, c.hdr[:2]); err != nil {
			return nil, err
		}
		op, n := c.hdr[0]&0x0F, int(c.hdr[1]&0x7F)
		if n >= 126 {
			ext := c.hdr[:2]
			if n == 127 {
				ext = c.hdr[:8]
			}
			if _, err := io.ReadFull(c.br, ext); err != nil {
				return nil, err
			}
			n = 0
			for _, x := range ext {
				n = n<<8 | int(x)
			}
		}
		if cap(c.msg) < n {
			c.msg = make([]byte, n)
		}
		c.msg = c.msg[:n]
		if _, err := io.ReadFull(c.br, c.msg); err != nil {
			return nil, err
		}
		if op == 0x8 {
			return nil, io.EOF
		}
		if op > 0x8 {
			continue
		}
		if n == 1 && c.msg[0] == '2' {
			c.write([]byte("3"))
			continue
		}
		return c.msg, nil
	}
}

// write sends p in a masked text frame whose mask is zero.
func (c *wsConn) write(p []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	f := append(c.out[:0], 0x81)
	if len(p) < 126 {
		f = append(f, 0x80|byte(len(p)))
	} else {
		f = append(f, 0x80|126, byte(len(p)>>8), byte(len(p)))
	}
	f = append(f, 0, 0, 0, 0)
	c.out = append(f, p...)
	c.nc.Write(c.out)
}

type tick struct {
	T int64  `json:"t"`
	I int    `json:"i"`
	P string `json:"p"`
}

var payload = tick{T: 1700000000123456, I: 42, P: strings.Repeat("x", 32)}

// BenchmarkBroadcast is hub.Emit to n sockets until each read it.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{100, 1000} {
		for _, exported := range []bool{false, true} {
			b.Run(fmt.Sprintf("recipients=%d/exporter=%v", n, exported), func(b *testing.B) {
				hub, url := benchServer(b, exported)
				var got, want atomic.Int64
				done := make(chan struct{}, 1)
				var wg sync.WaitGroup
				b.Cleanup(wg.Wait) // after the connections close
				for range n {
					c := dialWS(b, url)
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							m, err := c.read()
							if err != nil {
								return
							}
							if bytes.HasPrefix(m, []byte("42")) && got.Add(1) == want.Load() {
								done <- struct{}{}
							}
						}
					}()
				}
				b.ReportAllocs()
				for b.Loop() {
					want.Add(int64(n))
					if err := hub.Emit("tick", payload); err != nil {
						b.Fatal(err)
					}
					select {
					case <-done:
					case <-time.After(10 * time.Second):
						b.Fatalf("delivered %d of %d", got.Load(), want.Load())
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
			})
		}
	}
}

// BenchmarkEventAck is one client's event, answered with an ack by a
// typed handler, until the client read the ack.
func BenchmarkEventAck(b *testing.B) {
	for _, exported := range []bool{false, true} {
		b.Run(fmt.Sprintf("exporter=%v", exported), func(b *testing.B) {
			hub, url := benchServer(b, exported)
			hub.On("echo", func(s *rally.Socket, v tick) tick { return v })
			c := dialWS(b, url)
			const args = `{"t":1700000000123456,"i":42,"p":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`
			var msg []byte
			b.ReportAllocs()
			id := 0
			for b.Loop() {
				id++
				msg = strconv.AppendInt(append(msg[:0], "42"...), int64(id), 10)
				msg = append(append(append(msg, `["echo",`...), args...), ']')
				c.write(msg)
				for {
					m, err := c.read()
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

// BenchmarkEmitWithAck is the server asking one client, which answers:
// the path of the ack round trip histogram.
func BenchmarkEmitWithAck(b *testing.B) {
	for _, exported := range []bool{false, true} {
		b.Run(fmt.Sprintf("exporter=%v", exported), func(b *testing.B) {
			hub, url := benchServer(b, exported)
			var wg sync.WaitGroup
			b.Cleanup(wg.Wait) // after the connection closes
			c := dialWS(b, url)
			wg.Add(1)
			go func() { // answers every event: 42<id>[...] → 43<id>[]
				defer wg.Done()
				var ack []byte
				for {
					m, err := c.read()
					if err != nil {
						return
					}
					if !bytes.HasPrefix(m, []byte("42")) {
						continue
					}
					end := bytes.IndexByte(m, '[')
					ack = append(append(append(ack[:0], "43"...), m[2:end]...), "[]"...)
					c.write(ack)
				}
			}()
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := hub.EmitWithAck(ctx, "ask"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
