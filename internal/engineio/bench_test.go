package engineio_test

// Micro benchmarks of Engine.IO framing, and of a fan-out at the engine
// level (one frame to every session, without the Socket.IO layer):
//
//	go test -run '^$' -bench . -benchmem ./internal/engineio

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rallyhq/rally/internal/engineio"
)

var benchText = []byte(`42["tick",{"t":1700000000123456,"i":42,"p":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}]`)

func BenchmarkDecodePacket(b *testing.B) {
	b.Run("text", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := engineio.DecodePacket(benchText); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("base64", func(b *testing.B) {
		pkt := []byte("b" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 1024)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := engineio.DecodePacket(pkt); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchFrames() []engineio.Frame {
	frames := make([]engineio.Frame, 0, 10)
	for range 9 {
		frames = append(frames, engineio.Frame{Data: benchText})
	}
	return append(frames, engineio.Frame{Data: bytes.Repeat([]byte{7}, 256), Binary: true})
}

func BenchmarkAppendPayload(b *testing.B) {
	frames := benchFrames()
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = engineio.AppendPayload(buf[:0], frames)
	}
}

func BenchmarkDecodePayload(b *testing.B) {
	body := engineio.AppendPayload(nil, benchFrames())
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		if err := engineio.DecodePayload(body, func(engineio.Packet) { n++ }); err != nil || n != 10 {
			b.Fatal(n, err)
		}
	}
}

type benchHandler struct{}

func (benchHandler) OnMessage([]byte, bool) {}
func (benchHandler) OnClose(string)         {}

// benchReader is a raw websocket-only Engine.IO client that counts the
// message frames it reads, allocating nothing per frame.
func benchReader(b *testing.B, addr string, got *atomic.Int64, target *atomic.Int64, done chan struct{}, wg *sync.WaitGroup) net.Conn {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(nc, "GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: %s\r\n"+
		"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: YmVuY2htYXJrLWtleS0xMg==\r\n"+
		"Sec-WebSocket-Version: 13\r\n\r\n", addr)
	br := bufio.NewReaderSize(nc, 4096)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 0, 256)
		h := make([]byte, 2)
		for {
			if _, err := io.ReadFull(br, h); err != nil {
				return
			}
			n := int(h[1] & 0x7F)
			if n == 126 {
				if _, err := io.ReadFull(br, h); err != nil {
					return
				}
				n = int(h[0])<<8 | int(h[1])
			}
			if cap(buf) < n {
				buf = make([]byte, n)
			}
			buf = buf[:n]
			if _, err := io.ReadFull(br, buf); err != nil {
				return
			}
			if n > 0 && buf[0] == '4' && got.Add(1) == target.Load() {
				done <- struct{}{}
			}
		}
	}()
	return nc
}

// BenchmarkSessionFanout sends one pre-encoded frame to every websocket
// session with Session.Send, until every client read it: the engine's
// share of a broadcast.
func BenchmarkSessionFanout(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run("sessions="+strconv.Itoa(n), func(b *testing.B) {
			var mu sync.Mutex
			var sessions []*engineio.Session
			srv := engineio.NewServer(engineio.Options{
				Transports: []string{engineio.TransportWebSocket},
				NewSession: func(s *engineio.Session, _ *http.Request) engineio.Handler {
					mu.Lock()
					sessions = append(sessions, s)
					mu.Unlock()
					return benchHandler{}
				},
			})
			hs := httptest.NewServer(srv)
			var got, target atomic.Int64
			done := make(chan struct{}, 1)
			var wg sync.WaitGroup
			var conns []net.Conn
			for range n {
				conns = append(conns, benchReader(b, hs.Listener.Addr().String(), &got, &target, done, &wg))
			}
			defer func() {
				for _, c := range conns {
					c.Close()
				}
				srv.Close(engineio.ReasonForcedClose)
				hs.Close()
				wg.Wait()
			}()
			deadline := time.Now().Add(10 * time.Second)
			for srv.SessionCount() < n && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			mu.Lock()
			targets := append([]*engineio.Session(nil), sessions...)
			mu.Unlock()
			frame := engineio.Frame{Data: append([]byte{engineio.Message}, benchText[1:]...)}
			b.ReportAllocs()
			for b.Loop() {
				target.Add(int64(n))
				for _, s := range targets {
					s.Send(frame)
				}
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					b.Fatalf("delivered %d of %d", got.Load(), target.Load())
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
		})
	}
}
