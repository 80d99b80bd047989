// Package pollclient is the load generator's HTTP long-polling client:
// Engine.IO v4 sessions over the polling transport only (no upgrade), with
// just enough Socket.IO framing to join the main namespace. A client
// holds, as a browser does, two keep-alive connections: one for the
// long-polling GETs, one for the POSTs. It writes HTTP/1.1 on them itself
// (Raw, the default: a request allocates nothing once the buffers have
// grown) or goes through net/http's client (NetHTTP: requests and buffers
// reused, the rest is what net/http's transport allocates).
package pollclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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

// contentType is what POSTs carry, as the official client sends.
const contentType = "text/plain;charset=UTF-8"

// A wire sends the requests of one direction (GETs or POSTs) of a
// client, one at a time, on one keep-alive connection.
type wire interface {
	// do sends one request for target (path and query) and appends the
	// response's body to buf.
	do(method, target string, body, buf []byte) (status int, out []byte, err error)
	// abort makes the request in flight, if any, fail at once.
	abort()
	// close closes the connection.
	close()
}

// Wire chooses how a Client makes its requests.
type Wire int

const (
	// Raw writes HTTP/1.1 straight on the connections (raw.go): the
	// least CPU per request.
	Raw Wire = iota
	// NetHTTP goes through net/http's client, one Transport per
	// connection (nethttp.go).
	NetHTTP
)

// ParseWire returns the Wire named "raw" or "net/http".
func ParseWire(name string) (Wire, error) {
	switch name {
	case "raw":
		return Raw, nil
	case "net/http":
		return NetHTTP, nil
	}
	return 0, fmt.Errorf("pollclient: unknown wire %q (raw or net/http)", name)
}

// Client is a pair of keep-alive HTTP connections to one server, one for
// GETs and one for POSTs, over which sessions are opened one after the
// other. A Client runs one session at a time.
type Client struct {
	addr string
	get  wire
	post wire
}

// NewClient returns a client of the server at addr (host:port) that
// makes its requests with how. timeout bounds each request, long polls
// included (60s when 0); it must exceed the server's ping interval, which
// is as long as a poll may wait.
func NewClient(addr string, how Wire, timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	c := &Client{addr: addr}
	if how == NetHTTP {
		c.get, c.post = newNetWire(timeout), newNetWire(timeout)
	} else {
		c.get, c.post = newRawWire(addr, timeout), newRawWire(addr, timeout)
	}
	return c
}

// Close closes the client's connections.
func (c *Client) Close() {
	c.get.close()
	c.post.close()
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
	c      *Client
	Hs     Handshake
	target string // the session's path and query, for net/http its URL
	getBuf []byte

	postMu  sync.Mutex
	postBuf []byte
}

const path = "/socket.io/?EIO=4&transport=polling"

// Open starts a session: GET /socket.io/?EIO=4&transport=polling, whose
// answer is the open packet.
func (c *Client) Open() (*Session, error) {
	s := &Session{c: c, target: path}
	if _, ok := c.get.(*netWire); ok {
		s.target = "http://" + c.addr + path
	}
	payload, err := s.Poll()
	if err != nil {
		return nil, fmt.Errorf("pollclient: handshake: %w", err)
	}
	if len(payload) == 0 || payload[0] != '0' {
		return nil, fmt.Errorf("pollclient: handshake: expected the open packet, got %q", payload)
	}
	if err := json.Unmarshal(payload[1:], &s.Hs); err != nil || s.Hs.SID == "" {
		return nil, fmt.Errorf("pollclient: handshake: bad open packet %q: %v", payload, err)
	}
	s.target += "&sid=" + s.Hs.SID
	return s, nil
}

// Poll sends one GET and returns the payload it got: one or more packets
// separated by Separator (see Packets), valid until the next Poll. It
// waits as long as the server holds the request: until it has something
// to send, at most a ping interval.
func (s *Session) Poll() ([]byte, error) {
	status, buf, err := s.c.get.do("GET", s.target, nil, s.getBuf[:0])
	s.getBuf = buf
	if err == nil {
		err = statusError(status, buf)
	}
	if err != nil {
		return nil, fmt.Errorf("pollclient: GET: %w", err)
	}
	return buf, nil
}

// Post sends payload (one packet, or several separated by Separator) in
// one POST.
func (s *Session) Post(payload []byte) error {
	s.postMu.Lock()
	defer s.postMu.Unlock()
	status, buf, err := s.c.post.do("POST", s.target, payload, s.postBuf[:0])
	s.postBuf = buf
	if err == nil {
		err = statusError(status, buf)
	}
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

// statusError is nil for a 200; 400, the servers' answer for an unknown
// or closed session, is ErrClosed.
func statusError(status int, body []byte) error {
	switch status {
	case 200:
		return nil
	case 400:
		return fmt.Errorf("%w: status 400 %q", ErrClosed, body)
	}
	return fmt.Errorf("status %d %q", status, body)
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
// server, then ends whatever request of the session is still pending.
func (s *Session) Close() error {
	err := s.Post(closePacket)
	s.Abort()
	return err
}

// Abort ends the session's pending requests without telling the server,
// as a lost network would.
func (s *Session) Abort() {
	s.c.get.abort()
	s.c.post.abort()
}
