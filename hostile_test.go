package rally_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/sockettest"
)

// Hostile clients: one unauthenticated client must not take the server's
// memory nor stall the other clients. Each test attacks a real server over
// real sockets for a few seconds and asserts what it measures.

const (
	// attackTime is how long a flood lasts.
	attackTime = 3 * time.Second
	// floodHeapLimit bounds the heap one flooding client may grow. What
	// waits to be handled is bounded per connection (256 events or
	// MaxHTTPBufferSize = 1 MB of event data), and these attackers read
	// what is sent to them: about 1 MB of events and one POST body (1 MB)
	// or one websocket message being read, 2 to 4 MB with what the
	// collector still counts live while the attack allocates. 12 MiB is
	// three times that; without the bound, the race detector's slowness
	// still lets one client pin 25 to 65 MiB in three seconds (hundreds
	// of MiB without it).
	floodHeapLimit = 12 << 20
	// drainTimeout bounds the wait for a session to end once the attacker
	// is gone, backlog included.
	drainTimeout = 60 * time.Second
)

// pollPayload joins copies of packet with the polling separator (0x1e)
// into a body of at most size bytes.
func pollPayload(packet string, size int) []byte {
	n := (size + 1) / (len(packet) + 1)
	b := bytes.Repeat([]byte(packet+"\x1e"), n)
	return b[:len(b)-1]
}

// waitGone waits for the OnDisconnect of a session whose attacker left,
// after its backlog, so that no handler outlives the test.
func waitGone(t *testing.T, gone <-chan string) {
	t.Helper()
	start := time.Now()
	select {
	case <-gone:
		if d := time.Since(start); d > time.Second {
			t.Logf("the session ended %v after the attacker left (its backlog ran first)", d.Round(time.Millisecond))
		}
	case <-time.After(drainTimeout):
		t.Errorf("the session did not end within %v of the attacker leaving", drainTimeout)
	}
}

// One polling client posts 1 MB bodies of small events back to back: what
// waits to be handled must stay bounded (the server holds the POST's
// answer instead of buffering), so the heap does not grow with the flood.
func TestHostileInboundFloodPolling(t *testing.T) {
	tests := []struct {
		name string
		ack  bool // events ask for acks, and the attacker polls for them all along
	}{
		{"no ack, no GET", false},
		{"acked, polled", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hub := rally.NewHub(nil)
			var handled atomic.Int64
			packet := `42["post",{"a":1}]`
			if tt.ack {
				packet = `421["post",{"a":1}]`
				hub.On("post", func(s *rally.Socket, v map[string]any) string { handled.Add(1); return "ok" })
			} else {
				hub.On("post", func(s *rally.Socket, v map[string]any) { handled.Add(1) })
			}
			gone := make(chan string, 1)
			hub.OnDisconnect(func(s *rally.Socket, reason string) { gone <- reason })
			srv := sockettest.NewServer(t, hub)
			p := newPollClient(t, srv, "")
			p.connect("/")
			body := pollPayload(packet, 1e6)
			perBody := int64(bytes.Count(body, []byte{0x1e}) + 1)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()

			base := liveHeap()
			w := watchHeap()
			start := time.Now()
			var polls atomic.Int64
			pollDone := make(chan struct{})
			go func() {
				defer close(pollDone)
				for tt.ack && ctx.Err() == nil {
					if status, err := p.send(ctx, "GET", nil); err != nil || status != 200 {
						return
					}
					polls.Add(1)
					time.Sleep(20 * time.Millisecond) // handling what came, as a client does
				}
			}()
			// A POST whose answer is held past the window is abandoned.
			attackCtx, attackCancel := context.WithDeadline(ctx, start.Add(attackTime))
			defer attackCancel()
			var posts int64
			var stopped string
			for attackCtx.Err() == nil {
				status, err := p.send(attackCtx, "POST", body)
				if attackCtx.Err() != nil {
					stopped = "; the last POST was still unanswered at the end"
					break
				}
				if err != nil || status != 200 {
					stopped = fmt.Sprintf("; POST %d answered %d %v", posts+1, status, err)
					break
				}
				posts++
			}
			elapsed := time.Since(start)
			done := handled.Load()
			peak := w.Peak()
			growth := peak - base
			t.Logf("heap growth %.1f MiB during %v: %d POSTs of %d events (%d MB), %d handled, %d polls%s",
				mib(growth), elapsed.Round(time.Millisecond), posts, perBody, posts*int64(len(body))/1e6, done, polls.Load(), stopped)

			// Leave: a close packet, and the pending GET aborted.
			closeCtx, closeCancel := context.WithTimeout(context.Background(), 5*time.Second)
			p.send(closeCtx, "POST", []byte("1"))
			closeCancel()
			cancel()
			<-pollDone
			waitGone(t, gone)

			if growth >= floodHeapLimit {
				t.Errorf("heap grew %.1f MiB under one polling client's flood, want < %.0f MiB", mib(growth), mib(floodHeapLimit))
			}
		})
	}
}

// One websocket client sends acked 64 KB events as fast as it can and
// reads its acks (the handler echoes the event): the server must stop
// reading it when its backlog is full rather than buffer, so the heap
// does not grow with the flood.
func TestHostileInboundFloodWebSocket(t *testing.T) {
	for _, mode := range readModes {
		t.Run(mode.name, func(t *testing.T) {
			hub := mode.newHub(nil)
			var handled atomic.Int64
			hub.On("echo", func(s *rally.Socket, v string) string { handled.Add(1); return v })
			gone := make(chan string, 1)
			hub.OnDisconnect(func(s *rally.Socket, reason string) { gone <- reason })
			srv := sockettest.NewServer(t, hub)
			att := dialHostile(t, srv, "", 0)
			var acked atomic.Int64
			readDone := make(chan struct{})
			go discard(att.br, &acked, readDone)
			frame := clientFrame(opText, []byte(`421["echo","`+strings.Repeat("x", 64<<10)+`"]`))

			base := liveHeap()
			w := watchHeap()
			start := time.Now()
			sent, err := flood(att, frame, nil, start.Add(attackTime), 1<<30)
			elapsed := time.Since(start)
			done := handled.Load()
			peak := w.Peak()
			growth := peak - base
			stopped := ""
			if err != nil {
				stopped = fmt.Sprintf("; the flood ended early: %v", err)
			}
			t.Logf("heap growth %.1f MiB during %v: %d events sent (%d MB), %d handled, %d MB of acks read%s",
				mib(growth), elapsed.Round(time.Millisecond), sent/int64(len(frame)), sent/1e6, done, acked.Load()/1e6, stopped)

			att.Close()
			<-readDone
			waitGone(t, gone)

			if growth >= floodHeapLimit {
				t.Errorf("heap grew %.1f MiB under one websocket client's flood, want < %.0f MiB", mib(growth), mib(floodHeapLimit))
			}
		})
	}
}

// departure is a way for a hostile client to send events and go away.
type departure struct {
	name   string
	newHub func(*rally.Options) *rally.Hub
	// start connects to "/", sends the packets (text, such as
	// `42["x"]`) at once and returns leave, which makes the client go
	// away: a websocket client closes its TCP connection, a polling
	// client aborts its pending GET and its POST.
	start func(t *testing.T, srv *sockettest.Server, packets []string) (leave func())
}

func departures() []departure {
	ds := []departure{}
	for _, mode := range readModes {
		ds = append(ds, departure{"websocket/" + mode.name, mode.newHub, func(t *testing.T, srv *sockettest.Server, packets []string) func() {
			r := dialHostile(t, srv, "", 0)
			var frames []byte
			for _, p := range packets {
				frames = append(frames, clientFrame(opText, []byte(p))...)
			}
			// A server that stopped reading (its backlog full) may leave
			// the end unsent: the client leaves anyway.
			r.SetWriteDeadline(time.Now().Add(2 * time.Second))
			if n, err := r.Write(frames); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("sending %d packets: %v", len(packets), err)
			} else if err != nil {
				t.Logf("the server took %d of the %d bytes of packets", n, len(frames))
			}
			return func() { r.Close() }
		}})
	}
	ds = append(ds, departure{"polling", rally.NewHub, func(t *testing.T, srv *sockettest.Server, packets []string) func() {
		p := newPollClient(t, srv, "")
		p.connect("/")
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		// The GET is pending once written: the server reads it long
		// before the POST below is read and handled.
		wrote := make(chan struct{})
		getCtx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { close(wrote) }})
		done := make(chan struct{}, 2)
		go func() { p.send(getCtx, "GET", nil); done <- struct{}{} }()
		select {
		case <-wrote:
		case <-time.After(5 * time.Second):
			t.Fatal("the GET was not sent")
		}
		go func() { p.send(ctx, "POST", []byte(strings.Join(packets, "\x1e"))); done <- struct{}{} }()
		return func() {
			cancel()
			for range 2 {
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					t.Error("an aborted request did not return")
				}
			}
			p.tr.CloseIdleConnections()
		}
	}})
	return ds
}

// A client sends 5,000 events to a slow handler (20 ms each), then goes
// away: its socket disconnects soon, and what it had queued is dropped
// rather than run for the next 100 seconds.
func TestHostileDepartedClientBacklog(t *testing.T) {
	const events = 5000
	packets := make([]string, events)
	for i := range packets {
		packets[i] = `42["slow"]`
	}
	for _, d := range departures() {
		t.Run(d.name, func(t *testing.T) {
			hub := d.newHub(nil)
			release := make(chan struct{}) // closed at the end: the handlers that remain return at once
			var releaseOnce sync.Once
			releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
			defer releaseAll()
			var started, afterLeft, afterGone atomic.Int64
			var left, gone atomic.Bool
			hub.On("slow", func(s *rally.Socket) {
				started.Add(1)
				if left.Load() {
					afterLeft.Add(1)
				}
				if gone.Load() {
					afterGone.Add(1)
				}
				timer := time.NewTimer(20 * time.Millisecond)
				defer timer.Stop()
				select {
				case <-timer.C:
				case <-release:
				}
			})
			goneAt := make(chan time.Time, 1)
			hub.OnDisconnect(func(s *rally.Socket, reason string) {
				gone.Store(true)
				goneAt <- time.Now()
			})
			srv := sockettest.NewServer(t, hub)

			leave := d.start(t, srv, packets)
			for deadline := time.Now().Add(5 * time.Second); started.Load() == 0; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("no handler started")
				}
			}
			leftAt := time.Now()
			left.Store(true)
			leave()

			disconnected := time.Duration(-1)
			select {
			case at := <-goneAt:
				disconnected = at.Sub(leftAt)
				time.Sleep(2 * time.Second) // nothing may start in here
			case <-time.After(2 * time.Second):
			}
			ranAfterLeft, ranAfterGone := afterLeft.Load(), afterGone.Load()
			if disconnected >= 0 {
				t.Logf("OnDisconnect %v after the client left; handlers started after it left: %d, after OnDisconnect: %d (of %d started)",
					disconnected.Round(time.Millisecond), ranAfterLeft, ranAfterGone, started.Load())
			} else {
				t.Logf("no OnDisconnect within 2s of the client leaving; %d handlers started meanwhile (of %d started, %d queued)",
					ranAfterLeft, started.Load(), events)
				releaseAll()
				select {
				case at := <-goneAt:
					t.Logf("OnDisconnect came %v after the client left, once the handlers stopped sleeping", at.Sub(leftAt).Round(time.Millisecond))
				case <-time.After(drainTimeout):
					t.Error("no OnDisconnect at all")
				}
			}

			if disconnected < 0 || disconnected > 2*time.Second {
				t.Errorf("OnDisconnect was not called within 2s of the client leaving")
			}
			if ranAfterGone != 0 {
				t.Errorf("%d handlers started after OnDisconnect, want 0", ranAfterGone)
			}
		})
	}
}

// inFlightLimit bounds the time from a client leaving to the context of
// the handler it left running being done. The client's end (a websocket
// read error, a polling GET's abort) is seen within a millisecond when its
// reads are not paused, as here, and the disconnect cancels the context.
const inFlightLimit = 100 * time.Millisecond

// The client leaves while one of its handlers runs: the handler's
// s.Context() is done at the disconnect, not once the handler returned.
func TestHostileInFlightHandlerSeesDisconnect(t *testing.T) {
	for _, d := range departures() {
		t.Run(d.name, func(t *testing.T) {
			hub := d.newHub(nil)
			started := make(chan struct{}, 1)
			type outcome struct {
				sawDone bool
				at      time.Time
			}
			returned := make(chan outcome, 1)
			hub.On("block", func(s *rally.Socket) {
				started <- struct{}{}
				timer := time.NewTimer(time.Second + inFlightLimit) // the client leaves at once
				defer timer.Stop()
				select {
				case <-s.Context().Done():
					returned <- outcome{true, time.Now()}
				case <-timer.C:
					returned <- outcome{false, time.Now()}
				}
			})
			gone := make(chan error, 1)
			hub.OnDisconnect(func(s *rally.Socket, reason string) { gone <- s.Context().Err() })
			srv := sockettest.NewServer(t, hub)

			leave := d.start(t, srv, []string{`42["block"]`})
			select {
			case <-started:
			case <-time.After(5 * time.Second):
				t.Fatal("the handler did not start")
			}
			leftAt := time.Now()
			leave()
			var o outcome
			select {
			case o = <-returned:
			case <-time.After(5 * time.Second):
				t.Fatal("the handler did not return")
			}
			select {
			case <-gone:
			case <-time.After(5 * time.Second):
				t.Fatal("no OnDisconnect")
			}
			if !o.sawDone {
				t.Fatalf("the handler in flight returned after %v without its context being done", o.at.Sub(leftAt).Round(time.Millisecond))
			}
			latency := o.at.Sub(leftAt)
			t.Logf("the handler's context was done %v after the client left", latency.Round(time.Microsecond))
			if latency > inFlightLimit {
				t.Errorf("the handler's context was done %v after the client left, want < %v", latency, inFlightLimit)
			}
		})
	}
}

// bystanderLimit bounds a well-behaved client's round trip while another
// client misbehaves: an echo takes milliseconds, even under the race
// detector with 60 clients sharing two cores.
const bystanderLimit = time.Second

// One client never reads (a tiny receive buffer) and floods: pings, whose
// pongs it never takes, or 16 KiB messages. Sixty other clients doing
// emitWithAck round trips all the while are served as usual: no write on
// a read path blocks, and one busy connection does not keep the others
// from being read.
func TestHostileStalledReaderStallsOthers(t *testing.T) {
	pad := bytes.Repeat([]byte{'p'}, 125) // the largest control payload
	attacks := []struct {
		name string
		buf  []byte // written over and over
	}{
		{"ping frames", bytes.Repeat(clientFrame(opPing, pad), 512)},
		{"16 KiB messages", textFrames(`42["x","`+strings.Repeat("x", 16<<10)+`"]`, 4)},
	}
	for _, mode := range readModes {
		for _, a := range attacks {
			t.Run(mode.name+"/"+a.name, func(t *testing.T) {
				hub := mode.newHub(nil)
				hub.On("echo", echoHandler)
				srv := sockettest.NewServer(t, hub)
				bs := startBystanders(t, srv, 60)
				att := dialHostile(t, srv, "", 4096)

				stop := make(chan struct{})
				flooded := make(chan error, 1)
				var sent int64
				go func() {
					var err error
					sent, err = flood(att, a.buf, stop, time.Now().Add(attackTime+time.Second), 1<<40)
					flooded <- err
				}()
				r := bs.window(attackTime)
				close(stop)
				err := <-flooded
				att.Close() // frees whatever was stuck writing to it
				bs.stop()

				ended := ""
				if err != nil {
					ended = fmt.Sprintf(" (the server closed it: %v)", err)
				}
				t.Logf("worst round trip %v; fewest round trips by one bystander %d, %d in all, %d errors; %d bystanders waiting at the end, the longest for %v; the attacker sent %d KB%s",
					r.worst.Round(time.Millisecond), r.fewest, r.total, r.errs, r.stuck, r.worstStuck.Round(time.Millisecond), sent/1e3, ended)
				if r.worst >= bystanderLimit {
					t.Errorf("a bystander's round trip took %v, want < %v", r.worst.Round(time.Millisecond), bystanderLimit)
				}
				if r.fewest < 1 || r.errs > 0 {
					t.Errorf("some bystander completed %d round trips in %v (%d errors in all), want every one served", r.fewest, attackTime, r.errs)
				}
			})
		}
	}
}

// A client that never reads sends acked events whose 400 KB argument the
// handler echoes, and a blind pong every two seconds so that heartbeats
// do not end it. Its writes stall: it is disconnected once they made no
// progress for WriteTimeout (or once what waits to be written to it, the
// write in progress included, reaches MaxQueuedBytes), and meanwhile
// neither its replies nor its unread events pile up.
func TestHostileBlockedWritePinsMemory(t *testing.T) {
	const (
		attack = 4 * time.Second
		// writeTimeout: the client's writes stall within a second, so
		// it is gone well before the attack ends.
		writeTimeout = time.Second
		// blockedHeapLimit: the acks written or waiting (the socket's
		// goroutine waits on the stalled one), about 1 MB of events
		// waiting to be handled, the one being handled and its reply:
		// a few MB, at most MaxQueuedBytes (16 MB) of replies had the
		// handlers kept going, and 24 MiB leaves room for what the
		// collector still counts live. Without the bound on inbound
		// events the race detector's slowness still lets this client
		// pin 60 to 80 MiB in four seconds (about 1.6 GiB without it).
		blockedHeapLimit = 24 << 20
		// maxSent caps the attacker at 512 MB so that the tree without
		// the fix is not driven out of memory (it keeps it all).
		maxSent = 512 << 20
	)
	for _, mode := range readModes {
		t.Run(mode.name, func(t *testing.T) {
			hub := mode.newHub(&rally.Options{WriteTimeout: writeTimeout})
			var handled atomic.Int64
			hub.On("echo", func(s *rally.Socket, v string) string { handled.Add(1); return v })
			reasons := make(chan string, 1)
			hub.OnDisconnect(func(s *rally.Socket, reason string) { reasons <- reason })
			srv := sockettest.NewServer(t, hub)
			att := dialHostile(t, srv, "", 4096)
			event := clientFrame(opText, []byte(`421["echo","`+strings.Repeat("x", 400e3)+`"]`))
			pong := clientFrame(opText, []byte("3"))

			base := liveHeap()
			w := watchHeap()
			start := time.Now()
			until := start.Add(attack)
			var sent int64
			var werr error
			lastPong := start
			for sent < maxSent {
				if time.Since(lastPong) >= 2*time.Second {
					if ok, err := writeAll(att, pong, nil, until); !ok {
						werr = err
						break
					}
					lastPong = time.Now()
				}
				ok, err := writeAll(att, event, nil, until)
				if !ok {
					werr = err
					break
				}
				sent += int64(len(event))
			}
			elapsed := time.Since(start)
			// Connected or not, the attacker still holds its end: a
			// disconnect seen now is the server's doing.
			var reason string
			select {
			case reason = <-reasons:
			case <-time.After(2 * time.Second):
			}
			done := handled.Load()
			peak := w.Peak()
			growth := peak - base
			how := "still connected 2s after the attack"
			if reason != "" {
				how = fmt.Sprintf("disconnected: %q", reason)
			}
			if werr != nil {
				how += fmt.Sprintf(" (its writes failed: %v)", werr)
			}
			t.Logf("heap growth %.1f MiB during %v: %d events of 400 KB sent, %d handled; %s",
				mib(growth), elapsed.Round(time.Millisecond), sent/int64(len(event)), done, how)

			att.Close()
			if reason == "" {
				select {
				case r := <-reasons:
					t.Logf("after it hung up: %q", r)
				case <-time.After(drainTimeout):
					t.Error("the session did not end after the attacker hung up")
				}
			}

			if growth >= blockedHeapLimit {
				t.Errorf("heap grew %.1f MiB for one client that does not read, want < %.0f MiB", mib(growth), mib(blockedHeapLimit))
			}
			// Its writes stall (transport error, after WriteTimeout)
			// or its queue fills (write queue full), whichever first.
			if reason != rally.ReasonTransportError && reason != rally.ReasonQueueFull {
				t.Errorf("the client that does not read was not disconnected while connected (got %q), want %q or %q",
					reason, rally.ReasonTransportError, rally.ReasonQueueFull)
			}
		})
	}
}

// rawRequest sends req, bytes as they go on the wire, on a connection of
// its own and returns the status of the answer.
func rawRequest(addr string, req []byte) (int, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	_, werr := nc.Write(req) // a server that answers early may close before the end
	res, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		if werr != nil {
			return 0, werr
		}
		return 0, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

// request is the text of an HTTP/1.1 request to srv with the given request
// target, extra header lines and body.
func request(srv *sockettest.Server, method, target string, headers []string, body string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, srv.Listener.Addr())
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n" + body)
	return []byte(b.String())
}

// hugePad is the size of an oversized header or query: within net/http's
// own 1 MB limit, so that it reaches the hub, whose limit is 16 KiB of
// request line and headers (Node's HTTP server has the same).
const hugePad = 900 << 10

// 200 handshakes with a 900 KB header each, none joining a namespace: each
// is refused with 431, and nothing of them stays in memory.
func TestHostileHandshakeHeaders(t *testing.T) {
	const (
		handshakes = 200
		// handshakeHeapLimit: refused handshakes leave nothing; this is
		// room for the server's buffers and the collector's noise. Kept,
		// the headers weigh 200 × 900 KB = 176 MiB.
		handshakeHeapLimit = 16 << 20
	)
	hub := rally.NewHub(nil)
	srv := sockettest.NewServer(t, hub)
	req := request(srv, "GET", "/socket.io/?EIO=4&transport=polling", []string{"X-Pad: " + strings.Repeat("a", hugePad)}, "")

	base := liveHeap()
	start := time.Now()
	var mu sync.Mutex
	statuses := make(map[int]int)
	var errs []error
	var wg sync.WaitGroup
	next := make(chan struct{}, handshakes)
	for range handshakes {
		next <- struct{}{}
	}
	close(next)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				status, err := rawRequest(srv.Listener.Addr().String(), req)
				mu.Lock()
				statuses[status]++
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	growth := liveHeap() - base
	t.Logf("heap growth %.1f MiB after %d handshakes with a %d KB header (%v); answers by status: %v",
		mib(growth), handshakes, hugePad>>10, time.Since(start).Round(time.Millisecond), statuses)
	if len(errs) > 0 {
		t.Errorf("%d requests failed, the first with %v", len(errs), errs[0])
	}
	if statuses[http.StatusRequestHeaderFieldsTooLarge] != handshakes {
		t.Errorf("answers by status %v, want all %d", statuses, http.StatusRequestHeaderFieldsTooLarge)
	}
	if growth >= handshakeHeapLimit {
		t.Errorf("heap grew %.1f MiB with the sessions of refused handshakes, want < %.0f MiB", mib(growth), mib(handshakeHeapLimit))
	}
}

// Every engine request whose request line and headers pass 16 KiB gets
// 431, whatever its kind; smaller ones go through.
func TestHostileOversizedRequests(t *testing.T) {
	hub := rally.NewHub(nil)
	srv := sockettest.NewServer(t, hub)
	p := newPollClient(t, srv, "")
	p.connect("/")
	huge := strings.Repeat("a", hugePad)
	under := strings.Repeat("a", 12<<10)
	upgrade := []string{"Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"}
	handshake := "/socket.io/?EIO=4&transport=polling"
	session := "/socket.io/?EIO=4&transport=polling&sid=" + p.sid
	tests := []struct {
		name string
		req  []byte
		want int
	}{
		{"polling handshake, 900 KB header", request(srv, "GET", handshake, []string{"X-Pad: " + huge}, ""), 431},
		{"polling handshake, 900 KB query", request(srv, "GET", handshake+"&pad="+huge, nil, ""), 431},
		{"websocket handshake, 900 KB header", request(srv, "GET", "/socket.io/?EIO=4&transport=websocket", append([]string{"X-Pad: " + huge}, upgrade...), ""), 431},
		{"poll, 900 KB header", request(srv, "GET", session, []string{"X-Pad: " + huge}, ""), 431},
		{"POST, 900 KB header", request(srv, "POST", session, []string{"X-Pad: " + huge}, `42["x"]`), 431},
		{"polling handshake, 12 KB header", request(srv, "GET", handshake, []string{"X-Pad: " + under}, ""), 200},
		{"polling handshake, 12 KB query", request(srv, "GET", handshake+"&pad="+under, nil, ""), 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hub.Emit("news") // a poll of the session is answered at once
			status, err := rawRequest(srv.Listener.Addr().String(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("answered %d", status)
			if status != tt.want {
				t.Errorf("status %d, want %d", status, tt.want)
			}
		})
	}
}

// Sessions opened with a 12 KB query, each joining three namespaces, keep
// the query once: it is parsed once per connection and every socket of
// the connection shares it, and no copy of the request stays behind.
func TestHostileHandshakeQueryPerSession(t *testing.T) {
	const (
		sessions = 100
		padLen   = 12 << 10
		// perSessionLimit is 3 × 12 KB: one parsed query plus the URL
		// string that Handshake exposes is 12 to 24 KB; a copy of the
		// query per socket, besides the request kept by the session,
		// passes it.
		perSessionLimit = 3 * padLen
	)
	hub := rally.NewHub(nil)
	var mu sync.Mutex
	queries := make(map[string][]uintptr) // by the id query parameter: the Query map of each socket
	record := func(s *rally.Socket) {
		q := s.Handshake().Query
		mu.Lock()
		queries[q.Get("id")] = append(queries[q.Get("id")], reflect.ValueOf(q).Pointer())
		mu.Unlock()
	}
	hub.OnConnect(record)
	hub.Of("/a").OnConnect(record)
	hub.Of("/b").OnConnect(record)
	srv := sockettest.NewServer(t, hub)
	tr := pollTransport(t)
	open := func(prefix, query string) int64 {
		base := liveHeap()
		for i := range sessions {
			openPollSession(t, srv, tr, "&id="+prefix+strconv.Itoa(i)+query).connect("/", "/a", "/b")
		}
		return liveHeap() - base
	}
	small := open("small", "")
	large := open("large", "&pad="+strings.Repeat("a", padLen))
	perSession := (large - small) / sessions
	t.Logf("heap per session: %.1f KB with a short query, %.1f KB with a %d KB one: %.1f KB for the query",
		float64(small)/sessions/1e3, float64(large)/sessions/1e3, padLen>>10, float64(perSession)/1e3)

	// OnConnect runs once the client has its CONNECT reply.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		mu.Lock()
		n := 0
		for _, ptrs := range queries {
			n += len(ptrs)
		}
		mu.Unlock()
		if n == 2*3*sessions || time.Now().After(deadline) {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	shared := 0
	for i := range sessions {
		ptrs := queries["large"+strconv.Itoa(i)]
		if len(ptrs) != 3 {
			t.Fatalf("session %d: %d sockets recorded, want 3", i, len(ptrs))
		}
		if ptrs[0] == ptrs[1] && ptrs[1] == ptrs[2] {
			shared++
		}
	}
	t.Logf("%d of %d connections share one Query among their three sockets", shared, sessions)
	if perSession >= perSessionLimit {
		t.Errorf("a 12 KB query costs %.1f KB per session of three sockets, want < %.1f KB", float64(perSession)/1e3, float64(perSessionLimit)/1e3)
	}
	if shared != sessions {
		t.Errorf("%d of %d connections share their Query among their sockets, want all", shared, sessions)
	}
}

// One client sends 16 events of 900 KB to a room in a burst; a member of
// the room reads at 2 MB/s, steadily. 14.4 MB waits to be written to it,
// under the default MaxQueuedBytes (16 × MaxHTTPBufferSize): it gets
// every event and stays connected. With text, the race detector slows
// the server down to about 8 events a second, which the member nearly
// keeps up with; binary attachments come as fast as without it.
func TestHostileBurstKicksHealthyReader(t *testing.T) {
	const (
		events = 16
		size   = 900e3
		rate   = 2e6 // bytes per second
	)
	kinds := []struct {
		name  string
		frame []byte // one event to the room "r"
	}{
		{"text", clientFrame(opText, []byte(`42["room","r","`+strings.Repeat("x", size)+`"]`))},
		{"binary", append(clientFrame(opText, []byte(`451-["room","r",{"_placeholder":true,"num":0}]`)),
			clientFrame(opBinary, bytes.Repeat([]byte{'x'}, size))...)},
	}
	for _, kind := range kinds {
		for _, mode := range readModes {
			t.Run(kind.name+"/"+mode.name, func(t *testing.T) {
				t.Parallel() // each takes 7 s of reading at 2 MB/s
				hub := mode.newHub(nil)
				hub.On("join", func(s *rally.Socket, room string) { s.Join(room) })
				hub.On("room", func(s *rally.Socket, room string, data ...any) { s.To(room).Emit("msg", data...) })
				reasons := make(chan string, 1)
				hub.OnDisconnect(func(s *rally.Socket, reason string) {
					if s.Handshake().Query.Get("member") != "" {
						reasons <- reason
					}
				})
				srv := sockettest.NewServer(t, hub)
				member := srv.Socket(t, "/", &client.Options{
					Transports: []string{client.TransportWebSocket},
					HTTPClient: throttledClient(t, rate, 64<<10),
					Query:      url.Values{"member": {"1"}},
				})
				var got atomic.Int64
				all := make(chan struct{})
				member.On("msg", func(data ...any) {
					n := -1
					switch v := data[0].(type) {
					case string:
						n = len(v)
					case []byte:
						n = len(v)
					}
					if n == size && got.Add(1) == events {
						close(all)
					}
				})
				srv.Connect(t, member)
				if _, err := member.EmitWithAck(ctx5s(t), "join", "r"); err != nil {
					t.Fatal(err)
				}
				sender := dialHostile(t, srv, "", 0)
				burst := bytes.Repeat(kind.frame, events)

				start := time.Now()
				sender.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := sender.Write(burst); err != nil {
					t.Fatal(err)
				}
				var reason string
				select {
				case <-all:
				case reason = <-reasons:
				case <-time.After(30 * time.Second):
				}
				elapsed := time.Since(start)
				t.Logf("the member got %d of %d events of %d KB in %v; server-side disconnect: %q",
					got.Load(), events, int(size/1e3), elapsed.Round(time.Millisecond), reason)
				if got.Load() != events || reason != "" || !member.Connected() {
					t.Errorf("a client reading at %d MB/s got %d of %d events and was disconnected (%q), want all and connected",
						int(rate/1e6), got.Load(), events, reason)
				}
			})
		}
	}
}
