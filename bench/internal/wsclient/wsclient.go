// Package wsclient is the load generator's client: a minimal RFC 6455
// websocket client on a raw TCP connection, with just enough Engine.IO v4
// and Socket.IO v5 framing to connect to the main namespace, answer pings,
// emit events and read what the server sends, in the default parser's
// text format or, with Options.Msgpack, socket.io-msgpack-parser's binary
// one (msgpack.go). It allocates nothing per
// message once a connection is up, so that thousands of connections cost
// the load generator as little as possible.
package wsclient

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// Websocket opcodes.
const (
	opContinuation = 0x0
	OpText         = 0x1
	OpBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// ErrClosed is returned when the server closed the websocket.
var ErrClosed = errors.New("wsclient: closed by the server")

// Conn is one websocket connection. Reads must come from one goroutine;
// writes may come from several.
type Conn struct {
	nc   net.Conn
	br   *bufio.Reader
	msg  []byte // the message being read, reused
	ctl  []byte // control frame payload, reused
	wmu  sync.Mutex
	wbuf []byte
	pbuf []byte // the msgpack CONNECT being written, reused
	mask uint32
	// msgpack: Socket.IO packets are msgpack maps in binary messages.
	msgpack bool
	lastOp  byte // opcode of the message ReadMessage returned last
}

// Options configures Dial.
type Options struct {
	// ReadBuffer is the size of the connection's read buffer (4096 when 0).
	ReadBuffer int
	// Timeout bounds the TCP connect and the upgrade (10s when 0).
	Timeout time.Duration
	// Msgpack speaks socket.io-msgpack-parser's format: Join sends a
	// msgpack CONNECT and HandleEngine passes binary messages on as
	// Socket.IO packets.
	Msgpack bool
	// LocalAddr, when set, is the source address to connect from (see
	// dial); the port is chosen at connect time.
	LocalAddr net.IP
}

const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// Dial opens a websocket to ws://addr+path. addr is host:port.
func Dial(addr, path string, opts Options) (*Conn, error) {
	if opts.ReadBuffer <= 0 {
		opts.ReadBuffer = 4096
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	nc, err := dial(addr, opts)
	if err != nil {
		return nil, fmt.Errorf("wsclient: dialing %s: %w", addr, err)
	}
	nc.SetDeadline(time.Now().Add(opts.Timeout))
	var keyBytes [16]byte
	rand.Read(keyBytes[:])
	key := base64.StdEncoding.EncodeToString(keyBytes[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		nc.Close()
		return nil, fmt.Errorf("wsclient: writing the upgrade request: %w", err)
	}
	br := bufio.NewReaderSize(nc, opts.ReadBuffer)
	status, err := br.ReadSlice('\n')
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("wsclient: reading the upgrade response: %w", err)
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 101")) {
		nc.Close()
		return nil, fmt.Errorf("wsclient: upgrade refused: %q", bytes.TrimSpace(status))
	}
	sum := sha1.Sum([]byte(key + websocketGUID))
	wantAccept := base64.StdEncoding.EncodeToString(sum[:])
	accepted := false
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("wsclient: reading the upgrade headers: %w", err)
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("Sec-WebSocket-Accept")) {
			accepted = string(bytes.TrimSpace(value)) == wantAccept
		}
	}
	if !accepted {
		nc.Close()
		return nil, errors.New("wsclient: missing or wrong Sec-WebSocket-Accept")
	}
	nc.SetDeadline(time.Time{})
	return &Conn{nc: nc, br: br, msgpack: opts.Msgpack, mask: uint32(keyBytes[0])<<24 | uint32(keyBytes[1])<<16 | uint32(keyBytes[2])<<8 | uint32(keyBytes[3]) | 1}, nil
}

// SetReadDeadline sets the deadline of the next reads.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }

// ReadMessage returns the next data message. Its payload is valid until the
// next call. Pings are answered, pongs skipped; a close frame is ErrClosed.
func (c *Conn) ReadMessage() (op byte, payload []byte, err error) {
	c.msg = c.msg[:0]
	op = 0
	for {
		h0, err := c.br.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		h1, err := c.br.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		fin := h0&0x80 != 0
		fop := h0 & 0x0F
		n := uint64(h1 & 0x7F)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(c.br, b[:]); err != nil {
				return 0, nil, err
			}
			n = uint64(b[0])<<8 | uint64(b[1])
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(c.br, b[:]); err != nil {
				return 0, nil, err
			}
			n = 0
			for _, x := range b {
				n = n<<8 | uint64(x)
			}
		}
		if n > 1<<26 {
			return 0, nil, fmt.Errorf("wsclient: frame of %d bytes", n)
		}
		var mkey [4]byte
		masked := h1&0x80 != 0
		if masked {
			if _, err := io.ReadFull(c.br, mkey[:]); err != nil {
				return 0, nil, err
			}
		}
		if fop >= opClose {
			// Control frames are never fragmented and hold at most 125 bytes.
			c.ctl = append(c.ctl[:0], make([]byte, n)...)
			if _, err := io.ReadFull(c.br, c.ctl); err != nil {
				return 0, nil, err
			}
			if masked {
				unmask(c.ctl, mkey)
			}
			switch fop {
			case opClose:
				return 0, nil, ErrClosed
			case opPing:
				if err := c.writeFrame(opPong, c.ctl); err != nil {
					return 0, nil, err
				}
			}
			continue
		}
		start := len(c.msg)
		need := start + int(n)
		if cap(c.msg) < need {
			grown := make([]byte, start, need+need/2)
			copy(grown, c.msg)
			c.msg = grown
		}
		c.msg = c.msg[:need]
		if _, err := io.ReadFull(c.br, c.msg[start:]); err != nil {
			return 0, nil, err
		}
		if masked {
			unmask(c.msg[start:], mkey)
		}
		if fop != opContinuation {
			op = fop
		}
		if fin {
			c.lastOp = op
			return op, c.msg, nil
		}
	}
}

func unmask(b []byte, key [4]byte) {
	for i := range b {
		b[i] ^= key[i&3]
	}
}

// WriteText writes one text message.
func (c *Conn) WriteText(p []byte) error { return c.writeFrame(OpText, p) }

// WriteBinary writes one binary message.
func (c *Conn) WriteBinary(p []byte) error { return c.writeFrame(OpBinary, p) }

// WriteString writes one text message.
func (c *Conn) WriteString(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = c.appendHeader(c.wbuf[:0], OpText, len(s))
	start := len(c.wbuf)
	c.wbuf = append(c.wbuf, s...)
	c.maskTail(start)
	_, err := c.nc.Write(c.wbuf)
	return err
}

func (c *Conn) writeFrame(op byte, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = c.appendHeader(c.wbuf[:0], op, len(p))
	start := len(c.wbuf)
	c.wbuf = append(c.wbuf, p...)
	c.maskTail(start)
	_, err := c.nc.Write(c.wbuf)
	return err
}

// appendHeader appends a final frame's header and mask key (clients always
// mask), choosing a new key for each frame.
func (c *Conn) appendHeader(b []byte, op byte, n int) []byte {
	b = append(b, 0x80|op)
	switch {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	// xorshift: the key only has to vary, the server unmasks whatever it is.
	c.mask ^= c.mask << 13
	c.mask ^= c.mask >> 17
	c.mask ^= c.mask << 5
	return append(b, byte(c.mask>>24), byte(c.mask>>16), byte(c.mask>>8), byte(c.mask))
}

// maskTail masks c.wbuf[start:] with the key just before it.
func (c *Conn) maskTail(start int) {
	key := [4]byte(c.wbuf[start-4 : start])
	unmask(c.wbuf[start:], key)
}

// Close closes the connection at once.
func (c *Conn) Close() error { return c.nc.Close() }

// Reset closes the connection with a TCP reset, leaving no TIME_WAIT
// socket behind, so that a handshake loop does not run out of ports.
func (c *Conn) Reset() error {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	return c.nc.Close()
}

// Socket.IO framing.

// ConnectSocketIO opens a websocket-only Engine.IO session at
// ws://addr/socket.io/ and joins the main namespace: it reads the open
// packet, sends "40" and waits for the CONNECT answer.
func ConnectSocketIO(addr string, opts Options) (*Conn, error) {
	c, err := OpenEngine(addr, opts)
	if err != nil {
		return nil, err
	}
	if _, err := c.Join(nil, opts.timeout(), nil); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// OpenEngine opens a websocket-only Engine.IO session at
// ws://addr/socket.io/ and reads its open packet; Join then connects to
// the main namespace.
func OpenEngine(addr string, opts Options) (*Conn, error) {
	c, err := Dial(addr, "/socket.io/?EIO=4&transport=websocket", opts)
	if err != nil {
		return nil, err
	}
	c.nc.SetReadDeadline(time.Now().Add(opts.timeout()))
	_, m, err := c.ReadMessage()
	if err != nil || len(m) == 0 || m[0] != '0' {
		c.Close()
		return nil, fmt.Errorf("wsclient: expected the open packet, got %q, %v", m, err)
	}
	c.nc.SetReadDeadline(time.Time{})
	return c, nil
}

// Join sends a CONNECT to the main namespace, with auth as its payload
// when not empty (a JSON object, such as the {"pid":…,"offset":…} of a
// client recovering its session), and waits up to timeout for the
// answer. It returns the CONNECT reply's payload ({"sid":…} or
// {"sid":…,"pid":…}), valid until the next read. A CONNECT_ERROR is an
// error. With Options.Msgpack the CONNECT is a msgpack map, auth must be
// empty, and the reply's payload is the raw MessagePack of its data.
// Engine packets are handled meanwhile; every other message that
// comes before the reply (the events a recovered session missed) is
// passed to before, if not nil, valid during the call.
func (c *Conn) Join(auth []byte, timeout time.Duration, before func(m []byte)) ([]byte, error) {
	if c.msgpack {
		if len(auth) > 0 {
			return nil, errors.New("wsclient: CONNECT auth is not supported with msgpack")
		}
		c.nc.SetReadDeadline(time.Now().Add(timeout))
		defer c.nc.SetReadDeadline(time.Time{})
		return c.joinMsgpack(before)
	}
	c.wmu.Lock()
	c.wbuf = c.appendHeader(c.wbuf[:0], OpText, 2+len(auth))
	start := len(c.wbuf)
	c.wbuf = append(append(c.wbuf, '4', '0'), auth...)
	c.maskTail(start)
	_, err := c.nc.Write(c.wbuf)
	c.wmu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("wsclient: sending CONNECT: %w", err)
	}
	c.nc.SetReadDeadline(time.Now().Add(timeout))
	defer c.nc.SetReadDeadline(time.Time{})
	for {
		_, m, err := c.ReadMessage()
		if err != nil {
			return nil, fmt.Errorf("wsclient: waiting for CONNECT: %w", err)
		}
		if c.HandleEngine(m) {
			continue
		}
		switch {
		case bytes.HasPrefix(m, []byte("40")):
			return m[2:], nil
		case bytes.HasPrefix(m, []byte("44")):
			return nil, fmt.Errorf("wsclient: CONNECT refused: %s", m)
		case before != nil:
			before(m)
		}
	}
}

func (o Options) timeout() time.Duration {
	if o.Timeout <= 0 {
		return 10 * time.Second
	}
	return o.Timeout
}

// HandleEngine handles the Engine.IO packets that are not messages: a ping
// ("2") is answered with a pong. It reports whether m was such a packet.
// With Options.Msgpack, a binary message (the one ReadMessage returned
// last) is a Socket.IO packet, never an Engine.IO one.
func (c *Conn) HandleEngine(m []byte) bool {
	if c.msgpack && c.lastOp == OpBinary {
		return false
	}
	if len(m) == 0 || m[0] == '4' {
		return false
	}
	if m[0] == '2' {
		c.WriteString("3")
	}
	return true
}

// AppendEvent appends the text of a Socket.IO EVENT message: "42", the ack
// id when id >= 0, then ["event",json]. json must be valid JSON.
func AppendEvent(b []byte, id int64, event string, json []byte) []byte {
	b = append(b, '4', '2')
	if id >= 0 {
		b = strconv.AppendInt(b, id, 10)
	}
	b = append(b, '[', '"')
	b = append(b, event...)
	b = append(b, '"', ',')
	b = append(b, json...)
	return append(b, ']')
}

// AckID returns the ack id of an ACK message ("43<id>[...]").
func AckID(m []byte) (int64, bool) {
	if len(m) < 4 || m[0] != '4' || m[1] != '3' {
		return 0, false
	}
	var id int64
	i := 2
	for ; i < len(m) && m[i] >= '0' && m[i] <= '9'; i++ {
		id = id*10 + int64(m[i]-'0')
	}
	if i == 2 || i >= len(m) || m[i] != '[' {
		return 0, false
	}
	return id, true
}

// IntField returns the integer value of the first "key": in m, without
// decoding the JSON around it.
func IntField(m []byte, key string) (int64, bool) {
	var pat [32]byte
	p := append(pat[:0], '"')
	p = append(p, key...)
	p = append(p, '"', ':')
	i := bytes.Index(m, p)
	if i < 0 {
		return 0, false
	}
	i += len(p)
	neg := false
	if i < len(m) && m[i] == '-' {
		neg = true
		i++
	}
	start := i
	var v int64
	for ; i < len(m) && m[i] >= '0' && m[i] <= '9'; i++ {
		v = v*10 + int64(m[i]-'0')
	}
	if i == start {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

// TrailingString returns the last argument of an EVENT message when it is
// a string, as its JSON text without the quotes (still escaped): the
// offset connection state recovery appends to the events it keeps. It
// reports false when the last argument is not a string.
func TrailingString(m []byte) ([]byte, bool) {
	if len(m) < 4 || !bytes.HasSuffix(m, []byte(`"]`)) {
		return nil, false
	}
	end := len(m) - 2
	for i := end - 1; i >= 0; i-- {
		if m[i] != '"' {
			continue
		}
		escapes := 0
		for j := i - 1; j >= 0 && m[j] == '\\'; j-- {
			escapes++
		}
		if escapes%2 == 1 {
			continue // an escaped quote inside the string
		}
		if i == 0 || (m[i-1] != ',' && m[i-1] != '[') {
			return nil, false
		}
		return m[i+1 : end], true
	}
	return nil, false
}
