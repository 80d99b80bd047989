// Package pollclient is the load generator's HTTP long-polling client:
// Engine.IO v4 sessions over the polling transport only (no upgrade), with
// just enough Socket.IO framing to join the main namespace. It is built on
// net/http with keep-alive and holds, as a browser does, two connections
// per client: one for the long-polling GETs, one for the POSTs. Requests
// and buffers are reused from one request to the next, so what a request
// allocates is what net/http's transport allocates.
package pollclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Separator is what separates the packets of an Engine.IO v4 polling
// payload (the record separator).
const Separator = '\x1e'

// ErrClosed is returned when the server closed the session (a close
// packet "1" in a payload, or an HTTP 400 for an unknown session).
var ErrClosed = errors.New("pollclient: session closed by the server")

// Client is a pair of keep-alive HTTP connections to one server, one for
// GETs and one for POSTs, over which sessions are opened one after the
// other. A Client runs one session at a time.
type Client struct {
	addr     string
	timeout  time.Duration
	get      *http.Client
	post     *http.Client
	getTr    *http.Transport
	postTr   *http.Transport
	sessions int
}

// NewClient returns a client of the server at addr (host:port). timeout
// bounds each request, long polls included (60s when 0); it must exceed
// the server's ping interval, which is as long as a poll may wait.
func NewClient(addr string, timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	tr := func() *http.Transport {
		return &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			MaxConnsPerHost:     1, // one connection per direction, reused
			MaxIdleConnsPerHost: 1,
			MaxIdleConns:        1,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
			WriteBufferSize:     4096,
			ReadBufferSize:      4096,
		}
	}
	c := &Client{addr: addr, timeout: timeout, getTr: tr(), postTr: tr()}
	c.get = &http.Client{Transport: c.getTr, Timeout: timeout}
	c.post = &http.Client{Transport: c.postTr, Timeout: timeout}
	return c
}

// Close closes the client's idle connections.
func (c *Client) Close() {
	c.getTr.CloseIdleConnections()
	c.postTr.CloseIdleConnections()
}

// Handshake is the open packet's payload.
type Handshake struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int64    `json:"pingInterval"`
	PingTimeout  int64    `json:"pingTimeout"`
	MaxPayload   int64    `json:"maxPayload"`
}

// Session is one Engine.IO session over long-polling. Poll must be called
// from one goroutine; Post may be called from several (they are
// serialized, as the server refuses overlapping POSTs).
type Session struct {
	c   *Client
	Hs  Handshake
	ctx context.Context
	// cancel ends the session's requests, a pending poll included.
	cancel context.CancelFunc

	getReq  *http.Request
	getBuf  []byte
	postMu  sync.Mutex
	postReq *http.Request
	body    reusableBody
	postBuf []byte
}

// reusableBody is a POST body that can be reset, so that a request is
// reused without allocating a new body.
type reusableBody struct{ bytes.Reader }

func (*reusableBody) Close() error { return nil }

// Open starts a session: GET /socket.io/?EIO=4&transport=polling, whose
// answer is the open packet.
func (c *Client) Open() (*Session, error) {
	c.sessions++
	base := "http://" + c.addr + "/socket.io/?EIO=4&transport=polling"
	ctx, cancel := context.WithCancel(context.Background())
	s := &Session{c: c, ctx: ctx, cancel: cancel}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	s.getReq = req
	payload, err := s.Poll()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("pollclient: handshake: %w", err)
	}
	if len(payload) == 0 || payload[0] != '0' {
		cancel()
		return nil, fmt.Errorf("pollclient: handshake: expected the open packet, got %q", payload)
	}
	if err := json.Unmarshal(payload[1:], &s.Hs); err != nil || s.Hs.SID == "" {
		cancel()
		return nil, fmt.Errorf("pollclient: handshake: bad open packet %q: %v", payload, err)
	}
	url := base + "&sid=" + s.Hs.SID
	if s.getReq, err = http.NewRequestWithContext(ctx, http.MethodGet, url, nil); err != nil {
		cancel()
		return nil, err
	}
	if s.postReq, err = http.NewRequestWithContext(ctx, http.MethodPost, url, &s.body); err != nil {
		cancel()
		return nil, err
	}
	s.postReq.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	return s, nil
}

// Poll sends one GET and returns the payload it got: one or more packets
// separated by Separator (see Packets), valid until the next Poll. It
// waits as long as the server holds the request: until it has something
// to send, at most a ping interval.
func (s *Session) Poll() ([]byte, error) {
	resp, err := s.c.get.Do(s.getReq)
	if err != nil {
		return nil, fmt.Errorf("pollclient: GET: %w", err)
	}
	s.getBuf, err = readBody(resp, s.getBuf[:0])
	if err != nil {
		return nil, fmt.Errorf("pollclient: GET: %w", err)
	}
	return s.getBuf, nil
}

// Post sends payload (one packet, or several separated by Separator) in
// one POST.
func (s *Session) Post(payload []byte) error {
	s.postMu.Lock()
	defer s.postMu.Unlock()
	s.body.Reset(payload)
	s.postReq.ContentLength = int64(len(payload))
	resp, err := s.c.post.Do(s.postReq)
	if err != nil {
		return fmt.Errorf("pollclient: POST: %w", err)
	}
	s.postBuf, err = readBody(resp, s.postBuf[:0])
	if err != nil {
		return fmt.Errorf("pollclient: POST: %w", err)
	}
	return nil
}

// The packets the client sends on its own.
var (
	connectPacket = []byte("40")
	pongPacket    = []byte("3")
	closePacket   = []byte("1")
)

// readBody appends resp's body to buf and closes it; a status other than
// 200 is an error (400, the server's answer for an unknown or closed
// session, is ErrClosed).
func readBody(resp *http.Response, buf []byte) ([]byte, error) {
	defer resp.Body.Close()
	if resp.ContentLength > 0 && int64(cap(buf)) < resp.ContentLength {
		buf = make([]byte, 0, resp.ContentLength)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := resp.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return buf, err
		}
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return buf, nil
	case http.StatusBadRequest:
		return buf, fmt.Errorf("%w: %s %q", ErrClosed, resp.Status, buf)
	default:
		return buf, fmt.Errorf("%s %q", resp.Status, buf)
	}
}

// Packets calls fn with each packet of payload, in order, until fn
// returns false.
func Packets(payload []byte, fn func(p []byte) bool) {
	for len(payload) > 0 {
		p, rest, _ := bytes.Cut(payload, []byte{Separator})
		if !fn(p) {
			return
		}
		payload = rest
	}
}

// Join sends a CONNECT to the main namespace and polls until its reply,
// answering pings meanwhile, and returns the reply's payload ({"sid":…}),
// valid until the next Poll. A CONNECT_ERROR is an error. Messages that
// come in the same payloads as the reply are dropped.
func (s *Session) Join() ([]byte, error) {
	if err := s.Post(connectPacket); err != nil {
		return nil, fmt.Errorf("pollclient: sending CONNECT: %w", err)
	}
	for {
		payload, err := s.Poll()
		if err != nil {
			return nil, fmt.Errorf("pollclient: waiting for CONNECT: %w", err)
		}
		var reply []byte
		Packets(payload, func(p []byte) bool {
			switch {
			case reply == nil && strings.HasPrefix(string(p), "40"):
				reply = p[2:]
			case strings.HasPrefix(string(p), "44"):
				err = fmt.Errorf("pollclient: CONNECT refused: %s", p)
			default:
				err = s.HandleEngine(p)
			}
			return err == nil
		})
		if err != nil {
			return nil, err
		}
		if reply != nil {
			return reply, nil
		}
	}
}

// HandleEngine handles an Engine.IO packet that is not a message: a ping
// ("2") is answered with a pong POST, a noop ("6") skipped, a close ("1")
// is ErrClosed. It does nothing with a message ("4…").
func (s *Session) HandleEngine(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	switch p[0] {
	case '2':
		return s.Post(pongPacket)
	case '1':
		return ErrClosed
	}
	return nil
}

// Close sends the close packet ("1"), which ends the session on the
// server, then cancels whatever request of the session is still pending.
func (s *Session) Close() error {
	err := s.Post(closePacket)
	s.cancel()
	return err
}

// Abort cancels the session's pending requests without telling the
// server, as a lost network would.
func (s *Session) Abort() { s.cancel() }
