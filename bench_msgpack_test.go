package rally_test

// The benchmarks of bench_test.go with the msgpack parser, next to theirs:
//
//	go test -run '^$' -bench 'Broadcast$|BroadcastMsgpack|EventAck' -benchmem .

import (
	"strconv"
	"sync"
	"testing"

	"github.com/tinylib/msgp/msgp"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/msgpackparser"
	"github.com/rallyhq/rally/sockettest"
)

func benchMsgpackHub() *rally.Hub {
	return benchHubWith(rally.Options{Parser: msgpackparser.Parser{}})
}

// msgpackPacketType returns the type of a msgpack packet that Node or
// rally wrote (a map whose first key is "type"), or -1.
func msgpackPacketType(m []byte) int {
	if len(m) < 7 || m[0]&0xf0 != 0x80 || string(m[1:6]) != "\xa4type" {
		return -1
	}
	return int(m[6])
}

// benchDialMsgpack is benchDial for a msgpack hub: the CONNECT goes as a
// binary message.
func benchDialMsgpack(tb testing.TB, httpURL string) *benchConn {
	tb.Helper()
	c := benchOpen(tb, httpURL)
	connect := msgp.AppendMapHeader(nil, 2)
	connect = msgp.AppendString(connect, "type")
	connect = msgp.AppendInt(connect, 0)
	connect = msgp.AppendString(connect, "nsp")
	connect = msgp.AppendString(connect, "/")
	c.sendBinary(connect)
	c.joined(tb, func(m []byte) bool { return msgpackPacketType(m) == 0 })
	return c
}

// sendBinary writes a masked binary frame (zero mask key).
func (c *benchConn) sendBinary(p []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := append(c.wbuf[:0], 0x82)
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

// BenchmarkBroadcastMsgpack is BenchmarkBroadcast with the msgpack parser.
func BenchmarkBroadcastMsgpack(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run("recipients="+strconv.Itoa(n), func(b *testing.B) {
			hub := benchMsgpackHub()
			srv := sockettest.NewServer(b, hub)
			f := &benchFleet{done: make(chan struct{}, 1)}
			var wg sync.WaitGroup
			for range n {
				c := benchDialMsgpack(b, srv.URL)
				f.conns = append(f.conns, c)
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						m, err := c.next()
						if err != nil {
							return
						}
						if msgpackPacketType(m) == 2 && f.got.Add(1) == f.target.Load() {
							f.done <- struct{}{}
						}
					}
				}()
			}
			b.Cleanup(func() {
				for _, c := range f.conns {
					c.nc.Close()
				}
				wg.Wait()
			})
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
		})
	}
}

// BenchmarkEventAckMsgpack is BenchmarkEventAck with the msgpack parser:
// the same handlers and arguments, as MessagePack.
func BenchmarkEventAckMsgpack(b *testing.B) {
	tick := func(o []byte) []byte {
		o = msgp.AppendMapHeader(o, 3)
		o = msgp.AppendString(o, "t")
		o = msgp.AppendUint64(o, uint64(benchPayload.T))
		o = msgp.AppendString(o, "i")
		o = msgp.AppendUint64(o, uint64(benchPayload.I))
		o = msgp.AppendString(o, "p")
		return msgp.AppendString(o, benchPayload.P)
	}
	cases := []struct {
		name    string
		handler any
		args    func([]byte) []byte
		n       uint32
	}{
		{"struct", func(s *rally.Socket, v benchTick) benchTick { return v }, tick, 1},
		{"string+float64", func(s *rally.Socket, a string, x float64) (float64, error) { return x, nil },
			func(o []byte) []byte { return msgp.AppendFloat64(msgp.AppendString(o, "hello"), 3.5) }, 2},
		{"variadic-any", func(s *rally.Socket, args ...any) []any { return args }, tick, 1},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			hub := benchMsgpackHub()
			hub.On("echo", tc.handler)
			srv := sockettest.NewServer(b, hub)
			c := benchDialMsgpack(b, srv.URL)
			b.Cleanup(func() { c.nc.Close() })
			var msg []byte
			b.ReportAllocs()
			id := 0
			for b.Loop() {
				id++
				msg = msgp.AppendMapHeader(msg[:0], 4)
				msg = msgp.AppendString(msg, "type")
				msg = msgp.AppendInt(msg, 2)
				msg = msgp.AppendString(msg, "data")
				msg = msgp.AppendArrayHeader(msg, 1+tc.n)
				msg = msgp.AppendString(msg, "echo")
				msg = tc.args(msg)
				msg = msgp.AppendString(msg, "nsp")
				msg = msgp.AppendString(msg, "/")
				msg = msgp.AppendString(msg, "id")
				msg = msgp.AppendInt(msg, id)
				c.sendBinary(msg)
				for {
					m, err := c.next()
					if err != nil {
						b.Fatal(err)
					}
					if msgpackPacketType(m) == 3 {
						break
					}
				}
			}
		})
	}
}
