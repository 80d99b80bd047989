package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/rallyhq/rally/internal/engineio"
)

// Client-side close reasons, as the official client reports them.
const (
	ReasonServerDisconnect = "io server disconnect"
	ReasonClientDisconnect = "io client disconnect"
	ReasonPingTimeout      = "ping timeout"
	ReasonTransportClose   = "transport close"
	ReasonTransportError   = "transport error"
	ReasonParseError       = "parse error"
)

// handshake is the JSON of the open packet.
type handshake struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int64    `json:"pingInterval"`
	PingTimeout  int64    `json:"pingTimeout"`
	MaxPayload   int64    `json:"maxPayload"`
}

// engine is the client side of one Engine.IO session.
type engine struct {
	base      *url.URL // http(s) URL of the engine path, with the user's query
	opts      *Options
	onMessage func(data []byte, binary bool) // serialized
	onClose   func(reason string)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	recvMu sync.Mutex

	mu        sync.Mutex
	cond      *sync.Cond // signals changes of polling, writing, queue, closed
	sid       string
	hs        handshake
	transport string
	ws        *websocket.Conn
	queue     []engineio.Frame
	closing   bool // graceful close requested: no more sends
	closed    bool
	paused    bool // upgrade in progress: polling stops, writes wait
	polling   bool // a GET is in flight
	writing   bool // a POST or websocket write is in flight
	wake      chan struct{}
	watchdog  *time.Timer
	requests  int
}

// openEngine performs the handshake on the first enabled transport and
// starts the session's goroutines.
func openEngine(ctx context.Context, base *url.URL, opts *Options, onMessage func([]byte, bool), onClose func(string)) (*engine, error) {
	e := &engine{base: base, opts: opts, onMessage: onMessage, onClose: onClose, wake: make(chan struct{}, 1)}
	e.cond = sync.NewCond(&e.mu)
	e.ctx, e.cancel = context.WithCancel(context.Background())
	transports := opts.transports()
	var err error
	if transports[0] == TransportWebSocket {
		err = e.handshakeWebSocket(ctx)
	} else {
		err = e.handshakePolling(ctx)
	}
	if err != nil {
		e.cancel()
		return nil, err
	}
	e.resetWatchdog()
	e.wg.Add(1)
	go e.writeLoop()
	if e.transport == TransportPolling {
		e.wg.Add(1)
		go e.pollLoop()
		if slices.Contains(transports, TransportWebSocket) && slices.Contains(e.hs.Upgrades, TransportWebSocket) {
			e.wg.Add(1)
			go e.upgrade()
		}
	}
	return e, nil
}

// engineURL returns the URL of a request on the given transport.
func (e *engine) engineURL(transport string, withSID bool) string {
	u := *e.base
	q := u.Query()
	q.Set("EIO", "4")
	q.Set("transport", transport)
	if withSID {
		q.Set("sid", e.sid)
	}
	if transport == TransportPolling {
		e.requests++
		q.Set("t", strconv.Itoa(e.requests))
	} else if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func (e *engine) setHandshake(text []byte) error {
	p, err := engineio.DecodePacket(text)
	if err != nil || p.Type != engineio.Open {
		return fmt.Errorf("rally/client: expected an open packet, got %q", text)
	}
	var hs handshake
	if err := json.Unmarshal(p.Data, &hs); err != nil || hs.SID == "" {
		return fmt.Errorf("rally/client: bad open packet %q", text)
	}
	e.hs, e.sid = hs, hs.SID
	return nil
}

func (e *engine) handshakeWebSocket(ctx context.Context) error {
	conn, _, err := websocket.Dial(ctx, e.engineURL(TransportWebSocket, false), &websocket.DialOptions{
		HTTPClient: e.opts.HTTPClient, HTTPHeader: e.opts.Header,
	})
	if err != nil {
		return fmt.Errorf("rally/client: websocket handshake: %w", err)
	}
	_, text, err := conn.Read(ctx)
	if err == nil {
		err = e.setHandshake(text)
	}
	if err != nil {
		conn.CloseNow()
		return fmt.Errorf("rally/client: websocket handshake: %w", err)
	}
	conn.SetReadLimit(max(e.hs.MaxPayload, 1<<20))
	e.transport, e.ws = TransportWebSocket, conn
	e.wg.Add(1)
	go e.readLoop(conn)
	return nil
}

func (e *engine) handshakePolling(ctx context.Context) error {
	body, err := e.poll(ctx, e.engineURL(TransportPolling, false))
	if err != nil {
		return fmt.Errorf("rally/client: polling handshake: %w", err)
	}
	first, rest, _ := bytes.Cut(body, []byte{'\x1e'})
	if err := e.setHandshake(first); err != nil {
		return err
	}
	e.transport = TransportPolling
	if len(rest) > 0 {
		e.handlePayload(rest)
	}
	return nil
}

// httpClient returns the client for polling requests.
func (e *engine) httpClient() *http.Client {
	if e.opts.HTTPClient != nil {
		return e.opts.HTTPClient
	}
	return http.DefaultClient
}

// poll sends one GET and returns its body.
func (e *engine) poll(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range e.opts.Header {
		req.Header[k] = v
	}
	res, err := e.httpClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET: %s: %s", res.Status, bytes.TrimSpace(body))
	}
	return body, nil
}

// post sends a payload.
func (e *engine) post(body []byte) error {
	e.mu.Lock()
	u := e.engineURL(TransportPolling, true)
	e.mu.Unlock()
	req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range e.opts.Header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	res, err := e.httpClient().Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	io.Copy(io.Discard, res.Body)
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("POST: %s", res.Status)
	}
	return nil
}

// pollLoop receives on the polling transport until the session ends or an
// upgrade pauses it.
func (e *engine) pollLoop() {
	defer e.wg.Done()
	for {
		e.mu.Lock()
		if e.closed || e.closing || e.paused || e.transport != TransportPolling {
			e.mu.Unlock()
			return
		}
		e.polling = true
		u := e.engineURL(TransportPolling, true)
		e.mu.Unlock()

		body, err := e.poll(e.ctx, u)
		ok := err == nil && e.handlePayload(body)

		// The poll ends once its packets are handled: an upgrade waiting
		// for it must not let websocket messages overtake them.
		e.mu.Lock()
		e.polling = false
		e.cond.Broadcast()
		e.mu.Unlock()
		if err != nil {
			e.abort(ReasonTransportError)
		}
		if !ok {
			return
		}
	}
}

// handlePayload handles a polling payload; it reports false when the
// session ended.
func (e *engine) handlePayload(body []byte) bool {
	err := engineio.DecodePayload(body, e.handle)
	if err != nil {
		e.abort(ReasonParseError)
		return false
	}
	return !e.isClosed()
}

// readLoop receives on a websocket until it fails.
func (e *engine) readLoop(conn *websocket.Conn) {
	defer e.wg.Done()
	for {
		typ, data, err := conn.Read(e.ctx)
		if err != nil {
			reason := ReasonTransportClose
			if websocket.CloseStatus(err) == -1 && !errors.Is(err, io.EOF) && e.ctx.Err() == nil {
				reason = ReasonTransportError
			}
			e.abort(reason)
			return
		}
		if typ == websocket.MessageBinary {
			e.handle(engineio.Packet{Type: engineio.Message, Data: data, Binary: true})
			continue
		}
		p, err := engineio.DecodePacket(data)
		if err != nil {
			e.abort(ReasonParseError)
			return
		}
		e.handle(p)
	}
}

// handle processes one packet from the server.
func (e *engine) handle(p engineio.Packet) {
	switch p.Type {
	case engineio.Ping:
		e.resetWatchdog()
		e.send(engineio.TextFrame(engineio.Pong, ""))
	case engineio.Message:
		e.recvMu.Lock()
		defer e.recvMu.Unlock()
		if !e.isClosed() {
			e.onMessage(p.Data, p.Binary)
		}
	case engineio.Close:
		e.abort(ReasonTransportClose)
	}
}

func (e *engine) resetWatchdog() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	d := time.Duration(e.hs.PingInterval+e.hs.PingTimeout) * time.Millisecond
	if e.watchdog == nil {
		e.watchdog = time.AfterFunc(d, func() { e.abort(ReasonPingTimeout) })
	} else {
		e.watchdog.Reset(d)
	}
}

// upgrade probes a websocket and moves the session to it.
func (e *engine) upgrade() {
	defer e.wg.Done()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	e.mu.Lock()
	u := e.engineURL(TransportWebSocket, true)
	e.mu.Unlock()
	conn, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: e.opts.HTTPClient, HTTPHeader: e.opts.Header})
	if err != nil {
		return // stay on polling
	}
	conn.SetReadLimit(max(e.hs.MaxPayload, 1<<20))
	if conn.Write(ctx, websocket.MessageText, []byte("2probe")) != nil {
		conn.CloseNow()
		return
	}
	if _, data, err := conn.Read(ctx); err != nil || string(data) != "3probe" {
		conn.CloseNow()
		return
	}

	// Pause polling: wait for the GET and POST in flight to end. A close
	// requested meanwhile abandons the upgrade and says goodbye on polling.
	e.mu.Lock()
	if e.closing || e.closed {
		e.mu.Unlock()
		conn.CloseNow()
		return
	}
	e.paused = true
	for (e.polling || e.writing) && !e.closed && !e.closing {
		e.cond.Wait()
	}
	if e.closed || e.closing {
		e.paused = false
		e.cond.Broadcast()
		e.mu.Unlock()
		e.wakeWriter()
		conn.CloseNow()
		return
	}
	e.mu.Unlock()

	if conn.Write(ctx, websocket.MessageText, []byte{engineio.Upgrade}) != nil {
		conn.CloseNow()
		e.abort(ReasonTransportError)
		return
	}
	e.mu.Lock()
	e.transport, e.ws, e.paused = TransportWebSocket, conn, false
	e.cond.Broadcast()
	e.mu.Unlock()
	e.wakeWriter()
	e.wg.Add(1)
	go e.readLoop(conn)
}

// Transport returns the current transport's name.
func (e *engine) Transport() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.transport
}

// send queues frames to be written together.
func (e *engine) send(frames ...engineio.Frame) error {
	e.mu.Lock()
	if e.closed || e.closing {
		e.mu.Unlock()
		return errClosed
	}
	e.queue = append(e.queue, frames...)
	e.mu.Unlock()
	e.wakeWriter()
	return nil
}

var errClosed = errors.New("rally/client: connection closed")

func (e *engine) wakeWriter() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// writeLoop writes what is queued on the current transport.
func (e *engine) writeLoop() {
	defer e.wg.Done()
	for {
		select {
		case <-e.wake:
		case <-e.ctx.Done():
			return
		}
		for {
			e.mu.Lock()
			if e.closed || e.paused || len(e.queue) == 0 {
				e.cond.Broadcast()
				e.mu.Unlock()
				break
			}
			frames := e.queue
			e.queue = nil
			if e.transport == TransportPolling {
				n := pollBatch(frames, e.hs.MaxPayload)
				frames, e.queue = frames[:n:n], frames[n:]
			}
			e.writing = true
			transport, ws := e.transport, e.ws
			e.mu.Unlock()

			var err error
			if transport == TransportWebSocket {
				for _, f := range frames {
					typ := websocket.MessageText
					if f.Binary {
						typ = websocket.MessageBinary
					}
					if err = ws.Write(e.ctx, typ, f.Data); err != nil {
						break
					}
				}
			} else {
				err = e.post(engineio.AppendPayload(nil, frames))
			}

			e.mu.Lock()
			e.writing = false
			e.cond.Broadcast()
			e.mu.Unlock()
			if err != nil {
				e.abort(ReasonTransportError)
				return
			}
		}
	}
}

// pollBatch returns how many of frames fit in one POST payload of at most
// max bytes, and at least one: the official client, too, splits what it
// sends by the maxPayload of the handshake. Zero max means no limit.
func pollBatch(frames []engineio.Frame, max int64) int {
	if max <= 0 {
		return len(frames)
	}
	var size int64
	for i, f := range frames {
		n := int64(len(f.Data))
		if f.Binary {
			n = 1 + int64(base64.StdEncoding.EncodedLen(len(f.Data)))
		}
		if i > 0 {
			n++ // the separator
			if size+n > max {
				return i
			}
		}
		size += n
	}
	return len(frames)
}

func (e *engine) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// close ends the session gracefully: what is queued is written, then the
// transport is closed (a close packet on polling, a close frame on
// websocket). It waits for the session's goroutines.
func (e *engine) close(timeout time.Duration) {
	e.mu.Lock()
	if e.closed || e.closing {
		e.mu.Unlock()
		e.wg.Wait()
		return
	}
	e.closing = true
	e.cond.Broadcast()
	// An upgrade in progress either completes or is abandoned first.
	for e.paused && !e.closed {
		e.cond.Wait()
	}
	if e.transport == TransportPolling {
		e.queue = append(e.queue, engineio.TextFrame(engineio.Close, ""))
	}
	e.mu.Unlock()
	e.wakeWriter()

	deadline := time.AfterFunc(timeout, func() {
		e.mu.Lock()
		e.cond.Broadcast()
		e.mu.Unlock()
	})
	start := time.Now()
	e.mu.Lock()
	for (len(e.queue) > 0 || e.writing) && !e.closed && time.Since(start) < timeout {
		e.cond.Wait()
	}
	ws := e.ws
	e.mu.Unlock()
	deadline.Stop()
	if ws != nil && e.Transport() == TransportWebSocket {
		ws.Close(websocket.StatusNormalClosure, "")
	}
	e.abort(ReasonClientDisconnect)
	e.wg.Wait()
}

// abort ends the session at once.
func (e *engine) abort(reason string) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	if e.watchdog != nil {
		e.watchdog.Stop()
	}
	ws := e.ws
	e.cond.Broadcast()
	e.mu.Unlock()
	e.cancel()
	if ws != nil {
		ws.CloseNow()
	}
	e.onClose(reason)
}
