package ws

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// WriteMessages writes msgs in order with as few system calls as the
// operating system allows (one writev for up to 512 messages). Message
// bytes are not copied, so one payload may go to many connections. With
// compression negotiated, messages of compressThreshold bytes or more are
// compressed. A write that makes no progress for AcceptOptions.WriteTimeout
// fails with os.ErrDeadlineExceeded; the connection is then unusable.
func (c *Conn) WriteMessages(msgs ...Message) error {
	w := getWriteBatch()
	defer putWriteBatch(w)
	for _, m := range msgs {
		first := byte(finBit | opText)
		if m.Binary {
			first = finBit | opBinary
		}
		data := m.Data
		if c.deflate && !m.NoCompress && len(data) >= compressThreshold {
			data = deflate(nil, data)
			first |= rsv1Bit
		}
		w.add(first, data)
	}
	return c.write(w, c.writeTimeout)
}

// writeFrame writes one frame, a control frame for instance, failing after
// stall without progress.
func (c *Conn) writeFrame(first byte, payload []byte, stall time.Duration) error {
	w := getWriteBatch()
	defer putWriteBatch(w)
	w.add(first, payload)
	return c.write(w, stall)
}

func (c *Conn) write(w *writeBatch, stall time.Duration) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	err := c.writeLocked(w, stall)
	if err != nil && (errors.Is(err, net.ErrClosed) || c.endError() != nil) {
		return ErrClosed
	}
	return err
}

// writeLocked writes the batch. With stall set, the write may go on as long
// as it makes progress, and fails once stall passes without any.
func (c *Conn) writeLocked(w *writeBatch, stall time.Duration) error {
	p := progress{nc: c.nc, unsent: -1}
	if w.size <= flatLimit {
		// Small batches are copied into one buffer: a plain write costs
		// the kernel less than a vector of small pieces.
		for _, b := range w.bufs {
			w.flat = append(w.flat, b...)
		}
		flat := w.flat
		for {
			c.setWriteDeadline(stall)
			n, err := c.nc.Write(flat)
			if !p.made(err, n) {
				return err
			}
			flat = flat[n:]
		}
	}
	bufs := w.bufs // WriteTo consumes its receiver; keep w.bufs whole
	for {
		c.setWriteDeadline(stall)
		n, err := bufs.WriteTo(c.nc)
		if !p.made(err, int(n)) {
			return err
		}
	}
}

// setWriteDeadline bounds the next write to stall without progress.
//
// Setting a deadline costs the runtime a timer update, as much as a small
// write itself; so a deadline still within an eighth of stall of the one
// wanted is kept. A write then fails after 7/8 of stall without progress
// at the earliest, after stall at the latest.
func (c *Conn) setWriteDeadline(stall time.Duration) {
	if stall <= 0 {
		return
	}
	want := time.Now().Add(stall)
	if stall == c.wstall && want.Sub(c.wdeadline) < stall/8 {
		return
	}
	c.nc.SetWriteDeadline(want)
	c.wdeadline, c.wstall = want, stall
}

// progress tells a stalled write from a slow one.
type progress struct {
	nc     net.Conn
	unsent int // bytes the kernel had yet to send at the last timeout; -1 unknown
}

// made reports whether a write that returned err after n bytes is to go
// on: it timed out, but the client took something meanwhile. A write the
// kernel took no byte of may still have progressed: the kernel wakes a
// writer only once a good part of its send buffer is free, so a client
// that reads slowly from a large buffer takes bytes between wake-ups.
func (p *progress) made(err error, n int) bool {
	if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	unsent := unsentBytes(p.nc)
	moved := n > 0 || unsent >= 0 && p.unsent >= 0 && unsent < p.unsent
	p.unsent = unsent
	return moved
}

// flatLimit is the largest batch copied into one buffer before writing.
const flatLimit = 2048

// writeBatch gathers frame headers and payloads for one vectored write.
type writeBatch struct {
	hdrs []byte // the headers, back to back
	bufs net.Buffers
	size int    // bytes in bufs
	flat []byte // a small batch in one piece
}

func (w *writeBatch) add(first byte, payload []byte) {
	start := len(w.hdrs)
	// When hdrs grows, earlier entries of bufs keep the old array, which
	// still holds their bytes.
	w.hdrs = appendHeader(w.hdrs, first, len(payload))
	w.bufs = append(w.bufs, w.hdrs[start:])
	w.size += len(w.hdrs) - start + len(payload)
	if len(payload) > 0 {
		w.bufs = append(w.bufs, payload)
	}
}

var writeBatches sync.Pool

func getWriteBatch() *writeBatch {
	if w, ok := writeBatches.Get().(*writeBatch); ok {
		return w
	}
	return &writeBatch{}
}

func putWriteBatch(w *writeBatch) {
	if cap(w.bufs) > 1024 {
		return // let an unusually large batch go
	}
	clear(w.bufs)
	w.hdrs, w.bufs, w.size, w.flat = w.hdrs[:0], w.bufs[:0], 0, w.flat[:0]
	writeBatches.Put(w)
}
