package ws

import (
	"errors"
	"net"
	"sync"
)

// WriteMessages writes msgs in order with as few system calls as the
// operating system allows (one writev for up to 512 messages). Message
// bytes are not copied, so one payload may go to many connections. With
// compression negotiated, messages of compressThreshold bytes or more are
// compressed.
func (c *Conn) WriteMessages(msgs ...Message) error {
	w := getWriteBatch()
	defer putWriteBatch(w)
	for _, m := range msgs {
		first := byte(finBit | opText)
		if m.Binary {
			first = finBit | opBinary
		}
		data := m.Data
		if c.deflate && len(data) >= compressThreshold {
			data = deflate(nil, data)
			first |= rsv1Bit
		}
		w.add(first, data)
	}
	return c.write(w)
}

// writeFrame writes one frame, a control frame for instance.
func (c *Conn) writeFrame(first byte, payload []byte) error {
	w := getWriteBatch()
	defer putWriteBatch(w)
	w.add(first, payload)
	return c.write(w)
}

func (c *Conn) write(w *writeBatch) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	err := c.writeLocked(w)
	if err != nil && (errors.Is(err, net.ErrClosed) || c.endError() != nil) {
		return ErrClosed
	}
	return err
}

func (c *Conn) writeLocked(w *writeBatch) error {
	if w.size <= flatLimit {
		// Small batches are copied into one buffer: a plain write costs
		// the kernel less than a vector of small pieces.
		for _, b := range w.bufs {
			w.flat = append(w.flat, b...)
		}
		_, err := c.nc.Write(w.flat)
		return err
	}
	bufs := w.bufs // WriteTo consumes its receiver; keep w.bufs whole
	_, err := bufs.WriteTo(c.nc)
	return err
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
