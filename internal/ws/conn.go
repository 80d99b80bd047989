package ws

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Message is one data message: UTF-8 text, or binary when Binary is set.
type Message struct {
	Data   []byte
	Binary bool
	// NoCompress sends the message uncompressed even when
	// permessage-deflate was negotiated.
	NoCompress bool
}

// closeWait bounds how long Close waits for the peer's close frame.
const closeWait = 2 * time.Second

// replyWait bounds the write of a close frame that answers the peer or
// reports its protocol error.
const replyWait = time.Second

// hangUpCheck is how often a paused connection read by its own goroutine
// checks whether the peer went away.
const hangUpCheck = 250 * time.Millisecond

// Conn is a server-side WebSocket connection.
//
// Before Serve, ReadMessage reads messages one at a time. Serve hands every
// later message to a callback. Writes may come from any goroutine; they are
// serialised. The reading side never writes: pongs and close replies are
// written by goroutines of their own, so that a client that does not read
// cannot hold up the reads of others.
type Conn struct {
	nc           net.Conn
	deflate      bool
	writeTimeout time.Duration
	rd           parser
	queued       []Message // read before Serve and not yet returned

	onMessage func(Message)
	onClose   func(error)
	noPoller  bool
	poll      pollState   // the poller's bookkeeping
	paused    atomic.Bool // reading is paused, for one reason or more

	wmu sync.Mutex // serialises writes
	// The write deadline last set, and the stall it was set for (under
	// wmu): see setWriteDeadline.
	wdeadline time.Time
	wstall    time.Duration

	mu       sync.Mutex
	closed   bool          // the connection is closed, reading stopped
	local    bool          // Close or CloseNow was called
	reported bool          // onClose was called
	stopped  chan struct{} // made by Close, closed when reading stops
	closeErr error         // what ended reading
	pausedBy int           // why reading is paused: pauseByUser, pauseByPong
	resume   chan struct{} // made by a pause, closed by its end or the connection's
	pong     []byte        // payload of the last ping not yet answered
	pongDue  bool          // a pong is to be written
	ponging  bool          // a goroutine writes pongs
}

func newConn(nc net.Conn, opts AcceptOptions, deflate bool) *Conn {
	if opts.MaxMessageSize <= 0 {
		opts.MaxMessageSize = 1e6
	}
	c := &Conn{nc: nc, deflate: deflate, writeTimeout: opts.WriteTimeout}
	c.rd.maxSize = opts.MaxMessageSize
	c.rd.deflate = deflate
	c.noPoller = opts.NoPoller
	return c
}

// RemoteAddr returns the client's network address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// ReadMessage reads the next message, waiting until deadline. It must not
// be called after Serve. Messages that arrived before the connection failed
// are still returned, then the error.
func (c *Conn) ReadMessage(deadline time.Time) (Message, error) {
	if len(c.queued) == 0 {
		c.nc.SetReadDeadline(deadline)
		defer c.nc.SetReadDeadline(time.Time{})
		buf := getReadBuffer()
		defer putReadBuffer(buf)
		for len(c.queued) == 0 {
			if err := c.endError(); err != nil {
				return Message{}, err
			}
			n, err := c.nc.Read(*buf)
			if ferr := c.rd.feed((*buf)[:n], (*queueSink)(c)); ferr != nil {
				c.fail(ferr) // endError returns it once the queue is empty
				continue
			}
			if err != nil && len(c.queued) == 0 {
				return Message{}, err
			}
		}
	}
	m := c.queued[0]
	c.queued = c.queued[1:]
	return m, nil
}

// endError returns what ended the connection, or nil while it is open.
func (c *Conn) endError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.closed:
		return nil
	case c.closeErr != nil:
		return c.closeErr
	}
	return ErrClosed
}

// Serve delivers every message from now on to onMessage, in order and one
// at a time. When reading stops for any reason other than Close or
// CloseNow, onClose gets the cause: a *CloseError from the peer, a
// *ProtocolError, or the network error (io.EOF when the peer went away).
// Messages read before Serve are delivered first, on the calling goroutine,
// and so is the end of a connection that failed before Serve.
func (c *Conn) Serve(onMessage func(Message), onClose func(error)) {
	c.mu.Lock()
	c.onMessage, c.onClose = onMessage, onClose
	c.mu.Unlock()
	for len(c.queued) > 0 {
		m := c.queued[0]
		c.queued = c.queued[1:]
		onMessage(m)
	}
	c.queued = nil
	c.mu.Lock()
	closed, report, err := c.closed, c.reportLocked(), c.closeErr
	c.mu.Unlock()
	switch {
	case closed:
		if report != nil {
			report(err)
		}
	case !c.noPoller && watch(c):
	default:
		go c.readLoop()
	}
}

// readLoop reads on its own goroutine, for connections the poller does not
// watch.
func (c *Conn) readLoop() {
	buf := make([]byte, 4096)
	for c.readOnce(buf) {
		if c.paused.Load() && !c.waitResumed() {
			return
		}
	}
}

// Why reading is paused.
const (
	pauseByUser = 1 << iota // Pause
	pauseByPong             // a pong waits for the client to read
)

// Pause stops reading once the bytes already read are handed on: the
// client's further messages wait in the socket's buffers, and TCP slows the
// client down. The end of the connection is still noticed while paused.
func (c *Conn) Pause() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pauseLocked(pauseByUser)
}

// Resume reads again after Pause.
func (c *Conn) Resume() {
	c.mu.Lock()
	restart := c.resumeLocked(pauseByUser)
	c.mu.Unlock()
	if restart {
		restartReads(c)
	}
}

func (c *Conn) pauseLocked(reason int) {
	if c.closed {
		return
	}
	c.pausedBy |= reason
	if c.resume == nil {
		c.resume = make(chan struct{})
		c.paused.Store(true)
	}
}

// resumeLocked ends a pause for reason and reports whether reading is to
// restart.
func (c *Conn) resumeLocked(reason int) bool {
	c.pausedBy &^= reason
	if c.pausedBy != 0 || c.resume == nil {
		return false
	}
	close(c.resume)
	c.resume = nil
	c.paused.Store(false)
	return true
}

// waitResumed waits, on a connection read by its own goroutine, until
// reading resumes. It reports false when the connection ended meanwhile,
// a hang-up of the peer included.
func (c *Conn) waitResumed() bool {
	var t *time.Timer
	for {
		c.mu.Lock()
		resume, closed := c.resume, c.closed
		c.mu.Unlock()
		switch {
		case closed:
			return false
		case resume == nil:
			return true
		}
		if t == nil {
			t = time.NewTimer(hangUpCheck)
			defer t.Stop()
		}
		select {
		case <-resume:
		case <-t.C:
			if hungUp(c.nc) {
				c.stop(io.EOF)
				return false
			}
			t.Reset(hangUpCheck)
		}
	}
}

// readOnce reads once into buf and hands on what it completes. It reports
// whether reading goes on.
func (c *Conn) readOnce(buf []byte) bool {
	n, err := c.nc.Read(buf)
	return c.received(buf[:n], err)
}

// received hands on what b completes, then ends the connection if err is
// set. It reports whether reading goes on.
func (c *Conn) received(b []byte, err error) bool {
	if len(b) > 0 {
		if err := c.rd.feed(b, c); err != nil {
			c.fail(err)
			return false
		}
	}
	if err != nil {
		c.stop(err)
		return false
	}
	return true
}

// message and control make a serving Conn the parser's sink.
func (c *Conn) message(binary bool, data []byte) error {
	c.onMessage(Message{Data: data, Binary: binary})
	return nil
}

func (c *Conn) control(op byte, payload []byte) error {
	switch op {
	case opPing:
		c.queuePong(payload)
	case opClose:
		ce, err := parseClose(payload)
		if err != nil {
			return err
		}
		c.mu.Lock()
		replied := c.local
		c.mu.Unlock()
		if replied {
			return ce
		}
		var reply []byte
		if ce.Code != StatusNoStatus {
			reply = binary.BigEndian.AppendUint16(nil, uint16(ce.Code))
		}
		return &closeReply{payload: reply, err: ce}
	}
	return nil // pongs need nothing
}

// closeReply ends reading with err once the close frame with payload has
// been written back.
type closeReply struct {
	payload []byte
	err     error
}

func (r *closeReply) Error() string { return r.err.Error() }
func (r *closeReply) Unwrap() error { return r.err }

// queuePong has the ping's payload sent back by a writer of its own. Pings
// that arrive before it has written get one pong, for the latest (RFC 6455
// §5.5.3), and reading pauses until that write is done: a client that
// pings without reading its pongs is held back by TCP, like any other.
func (c *Conn) queuePong(payload []byte) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.pong = append(c.pong[:0], payload...)
	c.pongDue = true
	start := !c.ponging
	if !start {
		c.pauseLocked(pauseByPong)
	}
	c.ponging = true
	c.mu.Unlock()
	if start {
		go c.writePongs()
	}
}

func (c *Conn) writePongs() {
	var buf [maxControlLen]byte
	for {
		c.mu.Lock()
		restart := c.resumeLocked(pauseByPong)
		done := !c.pongDue || c.closed
		if done {
			c.ponging = false
		}
		n := copy(buf[:], c.pong)
		c.pongDue = false
		c.mu.Unlock()
		if restart {
			restartReads(c)
		}
		if done {
			return
		}
		if c.writeFrame(finBit|opPong, buf[:n], c.writeTimeout) != nil {
			c.mu.Lock()
			c.ponging = false
			c.mu.Unlock()
			return
		}
	}
}

// queueSink keeps messages read before Serve for ReadMessage and Serve.
type queueSink Conn

func (q *queueSink) message(binary bool, data []byte) error {
	q.queued = append(q.queued, Message{Data: data, Binary: binary})
	return nil
}

func (q *queueSink) control(op byte, payload []byte) error {
	return (*Conn)(q).control(op, payload)
}

// fail ends the connection after a read error: a protocol violation is
// answered with a close frame carrying its code first, and so is the
// peer's close frame. Once serving, the close frame is written by a
// goroutine of its own: the reading side does not wait for the client.
func (c *Conn) fail(err error) {
	var reply []byte
	var cr *closeReply
	var pe *ProtocolError
	switch {
	case errors.As(err, &cr):
		reply, err = cr.payload, cr.err
		if reply == nil {
			reply = []byte{}
		}
	case errors.As(err, &pe):
		reply = closePayload(pe.Code, "")
	default:
		c.stop(err)
		return
	}
	finish := func() {
		c.writeFrame(finBit|opClose, reply, replyWait)
		c.stop(err)
	}
	c.mu.Lock()
	serving := c.onMessage != nil
	c.mu.Unlock()
	if serving {
		go finish()
	} else {
		finish()
	}
}

// stop closes the connection once and reports err to onClose unless the
// local side closed it.
func (c *Conn) stop(err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.closeErr = err
	if c.resume != nil {
		close(c.resume) // a paused reader sees the end
		c.resume = nil
		c.pausedBy = 0
	}
	stopped, report := c.stopped, c.reportLocked()
	c.mu.Unlock()
	unwatch(c)
	c.nc.Close()
	if stopped != nil {
		close(stopped)
	}
	if report != nil {
		report(err)
	}
}

// reportLocked returns onClose if the end of the connection is to be
// reported to it now: it is closed, not by the local side, Serve was called
// and nobody reported it yet.
func (c *Conn) reportLocked() func(error) {
	if !c.closed || c.local || c.reported || c.onClose == nil {
		return nil
	}
	c.reported = true
	return c.onClose
}

// CloseNow closes the connection without a closing handshake.
func (c *Conn) CloseNow() {
	c.mu.Lock()
	c.local = true
	c.mu.Unlock()
	c.stop(nil)
}

// Close sends a close frame with code and reason (cut to the 123 bytes a
// close frame has room for) and closes the connection once the peer
// answers, or after closeWait. It returns the write error, if any. It must
// not be called from onMessage, which would keep the answer from being read
// until closeWait has passed.
func (c *Conn) Close(code int, reason string) error {
	c.mu.Lock()
	if c.closed || c.local {
		c.mu.Unlock()
		return ErrClosed
	}
	c.local = true
	serving := c.onMessage != nil
	stopped := make(chan struct{})
	c.stopped = stopped
	c.mu.Unlock()

	err := c.writeFrame(finBit|opClose, closePayload(code, reason), closeWait)
	if err == nil && serving {
		t := time.NewTimer(closeWait)
		select {
		case <-stopped:
		case <-t.C:
		}
		t.Stop()
	}
	c.stop(nil)
	return err
}

func closePayload(code int, reason string) []byte {
	for len(reason) > maxControlLen-2 {
		_, size := utf8.DecodeLastRuneInString(reason)
		reason = reason[:len(reason)-size]
	}
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
	return append(b, reason...)
}

var readBuffers = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

func getReadBuffer() *[]byte  { return readBuffers.Get().(*[]byte) }
func putReadBuffer(b *[]byte) { readBuffers.Put(b) }
