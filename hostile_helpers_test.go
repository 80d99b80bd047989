package rally_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/sockettest"
)

// Helpers of the hostile-client tests (hostile_test.go): heap measurement,
// websocket frames written by hand on raw TCP, raw long-polling, and
// bystanders that time their round trips.

// readModes lists the two ways the hub reads websockets: the epoll poller
// and a goroutine per connection.
var readModes = []struct {
	name   string
	newHub func(*rally.Options) *rally.Hub
}{
	{"epoll", rally.NewHub},
	{"goroutine", rally.NewHubNoPoller},
}

// --- heap -------------------------------------------------------------

const liveHeapMetric = "/gc/heap/live:bytes"

// liveHeap returns the bytes of live heap objects after a full collection
// (two, so that what sync.Pools held is gone too).
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{{Name: liveHeapMetric}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// heapWatch records the largest live heap the collector measured while an
// attack runs. It only reads what each collection cycle found (forcing a
// collection every few milliseconds would slow the attack down); Peak adds
// one forced collection at the end, while the attack's state still exists.
type heapWatch struct {
	stop chan struct{}
	done chan struct{}
	peak int64
}

func watchHeap() *heapWatch {
	w := &heapWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		s := []metrics.Sample{{Name: liveHeapMetric}}
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			w.peak = max(w.peak, int64(s[0].Value.Uint64()))
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// Peak stops the watch and returns the largest live heap seen, a forced
// collection now included.
func (w *heapWatch) Peak() int64 {
	close(w.stop)
	<-w.done
	return max(w.peak, liveHeap())
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// --- websocket frames by hand -------------------------------------------

const (
	opText   = 0x1
	opBinary = 0x2
	opPing   = 0x9
)

// maskKey masks every frame the hostile clients send: a client must mask,
// and nothing says the key must change.
var maskKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// clientFrame encodes one final, masked client frame: FIN and the opcode,
// the MASK bit with the length (7 bits, or 126 + 16 bits, or 127 + 64
// bits), the masking key, the masked payload.
func clientFrame(op byte, payload []byte) []byte {
	b := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, maskKey[:]...)
	for i, c := range payload {
		b = append(b, c^maskKey[i%4])
	}
	return b
}

// textFrames is n text frames of msg back to back, to be written at once.
func textFrames(msg string, n int) []byte {
	return bytes.Repeat(clientFrame(opText, []byte(msg)), n)
}

// rawWS is a websocket spoken by hand over a TCP connection, for clients
// that do what the Go and JS clients never do.
type rawWS struct {
	net.Conn
	br *bufio.Reader
}

// dialTCP connects to srv, with the socket's receive buffer set to rcvbuf
// bytes when rcvbuf > 0 (the kernel doubles it and keeps a minimum).
func dialTCP(t *testing.T, srv *sockettest.Server, rcvbuf int) net.Conn {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) {
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
		}
	}
	nc, err := d.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// dialHostile opens a websocket session by hand (upgrade request, open
// packet) and joins the main namespace.
func dialHostile(t *testing.T, srv *sockettest.Server, query string, rcvbuf int) *rawWS {
	t.Helper()
	nc := dialTCP(t, srv, rcvbuf)
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	defer nc.SetDeadline(time.Time{})
	fmt.Fprintf(nc, "GET /socket.io/?EIO=4&transport=websocket%s HTTP/1.1\r\nHost: %s\r\n"+
		"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"+
		"Sec-WebSocket-Version: 13\r\n\r\n", query, srv.Listener.Addr())
	r := &rawWS{Conn: nc, br: bufio.NewReader(nc)}
	res, err := http.ReadResponse(r.br, nil)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %s", res.Status)
	}
	if open := r.readText(t); !strings.HasPrefix(open, `0{"sid":`) {
		t.Fatalf("open packet %q", open)
	}
	r.Write(clientFrame(opText, []byte("40")))
	if reply := r.readText(t); !strings.HasPrefix(reply, `40{"sid":"`) {
		t.Fatalf("CONNECT reply %q", reply)
	}
	return r
}

// readText reads the next server frame, which must be a small unmasked
// text frame, and skips engine pings.
func (r *rawWS) readText(t *testing.T) string {
	t.Helper()
	for {
		var h [2]byte
		if _, err := io.ReadFull(r.br, h[:]); err != nil {
			t.Fatalf("read frame: %v", err)
		}
		n := int(h[1] & 0x7f)
		switch n {
		case 126:
			var l [2]byte
			if _, err := io.ReadFull(r.br, l[:]); err != nil {
				t.Fatalf("read frame: %v", err)
			}
			n = int(binary.BigEndian.Uint16(l[:]))
		case 127:
			t.Fatal("unexpectedly large frame")
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(r.br, payload); err != nil {
			t.Fatalf("read frame: %v", err)
		}
		if h[0]&0x0f != opText {
			t.Fatalf("frame with opcode %#x, want text", h[0]&0x0f)
		}
		if string(payload) != "2" {
			return string(payload)
		}
	}
}

// writeAll writes all of b, each write bounded so that a server that
// stopped reading does not hold the attacker: it retries after a timeout
// until stop is closed or until passes. It reports false when it gave up
// (stopped, out of time, or the connection failed: err says).
func writeAll(c net.Conn, b []byte, stop <-chan struct{}, until time.Time) (bool, error) {
	for len(b) > 0 {
		select {
		case <-stop:
			return false, nil
		default:
		}
		if !time.Now().Before(until) {
			return false, nil
		}
		c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := c.Write(b)
		b = b[n:]
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			continue // the server pushes back: fine, try again
		}
		if err != nil {
			return false, err
		}
	}
	return true, nil
}

// flood writes buf over and over until stop is closed, the end of the
// window or limit bytes. It returns the bytes of buf written whole and
// the error that ended the flood early, if any.
func flood(c net.Conn, buf []byte, stop <-chan struct{}, until time.Time, limit int64) (int64, error) {
	var sent int64
	for sent < limit {
		ok, err := writeAll(c, buf, stop, until)
		if !ok {
			return sent, err
		}
		sent += int64(len(buf))
	}
	return sent, nil
}

// discard reads and drops whatever c receives until it fails, counting the
// bytes; it closes done when it returns.
func discard(c io.Reader, n *atomic.Int64, done chan<- struct{}) {
	defer close(done)
	buf := make([]byte, 64<<10)
	for {
		m, err := c.Read(buf)
		n.Add(int64(m))
		if err != nil {
			return
		}
	}
}

// --- long-polling by hand ---------------------------------------------

// pollClient is a long-polling session driven with raw requests on a
// transport of its own, closed when the test ends.
type pollClient struct {
	t   *testing.T
	tr  *http.Transport
	hc  *http.Client
	url string // the engine URL with the sid
	sid string
}

func newPollClient(t *testing.T, srv *sockettest.Server, query string) *pollClient {
	t.Helper()
	return openPollSession(t, srv, pollTransport(t), query)
}

// pollTransport is an HTTP transport closed when the test ends.
func pollTransport(t *testing.T) *http.Transport {
	tr := &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// openPollSession runs a polling handshake on tr, with query appended to
// the handshake's URL.
func openPollSession(t *testing.T, srv *sockettest.Server, tr *http.Transport, query string) *pollClient {
	t.Helper()
	p := &pollClient{t: t, tr: tr, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	status, body, err := p.do(context.Background(), "GET", srv.URL+"/socket.io/?EIO=4&transport=polling"+query, nil)
	if err != nil || status != 200 || !strings.HasPrefix(string(body), `0{"sid":"`) {
		t.Fatalf("handshake: %d %q %v", status, body, err)
	}
	p.sid = string(body[len(`0{"sid":"`) : len(`0{"sid":"`)+20])
	p.url = srv.URL + "/socket.io/?EIO=4&transport=polling&sid=" + p.sid
	return p
}

// do sends one request and returns the status and body of its answer.
func (p *pollClient) do(ctx context.Context, method, url string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	res, err := p.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// send sends one request and drops the answer's body.
func (p *pollClient) send(ctx context.Context, method string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, p.url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	res, err := p.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, err = io.Copy(io.Discard, res.Body)
	return res.StatusCode, err
}

// connect joins the namespaces with one POST and polls until every
// CONNECT is answered.
func (p *pollClient) connect(namespaces ...string) {
	p.t.Helper()
	var packets []string
	for _, n := range namespaces {
		if n == "/" {
			packets = append(packets, "40")
		} else {
			packets = append(packets, "40"+n+",")
		}
	}
	if status, body, err := p.do(context.Background(), "POST", p.url, []byte(strings.Join(packets, "\x1e"))); status != 200 || err != nil {
		p.t.Fatalf("CONNECT: %d %q %v", status, body, err)
	}
	for got := 0; got < len(namespaces); {
		status, body, err := p.do(context.Background(), "GET", p.url, nil)
		if status != 200 || err != nil {
			p.t.Fatalf("poll: %d %q %v", status, body, err)
		}
		for _, pkt := range strings.Split(string(body), "\x1e") {
			if !strings.HasPrefix(pkt, "40") {
				continue
			}
			if !strings.Contains(pkt, `{"sid":"`) {
				p.t.Fatalf("CONNECT reply %q", pkt)
			}
			got++
		}
	}
}

// --- bystanders -------------------------------------------------------

// echoHandler answers the round trips of bystanders.
func echoHandler(s *rally.Socket, n int) int { return n }

// bystanders are well-behaved websocket clients that run emitWithAck round
// trips ("echo") back to back, each timing its own.
type bystanders struct {
	clients []*bystander
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	measure atomic.Bool // round trips count from now on
}

type bystander struct {
	c        *client.Socket
	inFlight atomic.Int64 // start of the round trip under way, UnixNano; 0 between them
	worst    atomic.Int64 // nanoseconds
	count    atomic.Int64
	errs     atomic.Int64
}

// startBystanders connects n clients to srv (which must handle "echo"
// with echoHandler) and starts their round trips; each has done one when
// it returns.
func startBystanders(t *testing.T, srv *sockettest.Server, n int) *bystanders {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	bs := &bystanders{cancel: cancel}
	t.Cleanup(bs.stop)
	for range n {
		bs.clients = append(bs.clients, &bystander{c: srv.Dial(t, "/", &client.Options{Transports: []string{client.TransportWebSocket}})})
	}
	warm := make(chan struct{}, n)
	for _, b := range bs.clients {
		bs.wg.Add(1)
		go func() {
			defer bs.wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				start := time.Now()
				b.inFlight.Store(start.UnixNano())
				callCtx, callCancel := context.WithTimeout(ctx, 20*time.Second)
				_, err := b.c.EmitWithAck(callCtx, "echo", i)
				callCancel()
				rt := time.Since(start)
				b.inFlight.Store(0)
				if i == 0 {
					warm <- struct{}{}
				}
				if ctx.Err() != nil {
					return
				}
				if !bs.measure.Load() {
					continue
				}
				if err != nil {
					b.errs.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				b.count.Add(1)
				if int64(rt) > b.worst.Load() {
					b.worst.Store(int64(rt))
				}
			}
		}()
	}
	timeout := time.After(10 * time.Second)
	for range n {
		select {
		case <-warm:
		case <-timeout:
			t.Fatal("bystanders: no first round trip within 10s")
		}
	}
	return bs
}

// rtReport is what the bystanders did during a measured window.
type rtReport struct {
	worst      time.Duration // the slowest round trip, unfinished ones included
	fewest     int64         // round trips of the least served bystander
	total      int64
	errs       int64
	stuck      int // bystanders whose round trip was still waiting at the end
	worstStuck time.Duration
}

// window measures the round trips of the next d.
func (bs *bystanders) window(d time.Duration) rtReport {
	for _, b := range bs.clients {
		b.worst.Store(0)
		b.count.Store(0)
		b.errs.Store(0)
	}
	bs.measure.Store(true)
	time.Sleep(d)
	now := time.Now().UnixNano()
	r := rtReport{fewest: -1}
	for _, b := range bs.clients {
		worst := time.Duration(b.worst.Load())
		if start := b.inFlight.Load(); start != 0 && now-start > int64(100*time.Millisecond) {
			r.stuck++
			r.worstStuck = max(r.worstStuck, time.Duration(now-start))
			worst = max(worst, time.Duration(now-start))
		}
		r.worst = max(r.worst, worst)
		n := b.count.Load()
		r.total += n
		if r.fewest < 0 || n < r.fewest {
			r.fewest = n
		}
		r.errs += b.errs.Load()
	}
	bs.measure.Store(false)
	return r
}

// stop ends the round trips and waits for the bystanders' goroutines.
func (bs *bystanders) stop() {
	bs.cancel()
	bs.wg.Wait()
}

// --- throttled reading --------------------------------------------------

// throttledConn reads at most rate bytes per second.
type throttledConn struct {
	net.Conn
	rate  float64
	start time.Time
	read  int64
}

func (c *throttledConn) Read(p []byte) (int, error) {
	if c.start.IsZero() {
		c.start = time.Now()
	}
	if ahead := time.Duration(float64(c.read)/c.rate*float64(time.Second)) - time.Since(c.start); ahead > 0 {
		time.Sleep(ahead)
	}
	if len(p) > 16<<10 {
		p = p[:16<<10]
	}
	n, err := c.Conn.Read(p)
	c.read += int64(n)
	return n, err
}

// throttledClient is an HTTP client whose connections read at rate bytes
// per second, for a websocket client that reads slowly but steadily, with
// a receive buffer of rcvbuf bytes.
func throttledClient(t *testing.T, rate float64, rcvbuf int) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
		})
	}}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &throttledConn{Conn: nc, rate: rate}, nil
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}
