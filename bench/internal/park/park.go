//go:build linux

// Package park holds many idle Engine.IO websocket connections for the
// load generator at a few bytes each: their sockets sit on one epoll
// instance served by one goroutine, which answers the server's Engine.IO
// pings ("2", answered "3") and websocket pings, and notices connections
// the server closes. A connection that has joined and then only answers
// pings needs no goroutine, read buffer nor Go net.Conn of its own.
package park

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
)

// pongFrame is the Engine.IO pong "3" in a masked, final text frame
// (clients must mask; any key does).
var pongFrame = []byte{0x81, 0x81, 0x11, 0x22, 0x33, 0x44, '3' ^ 0x11}

// Park is a set of parked connections and the goroutine that serves them.
type Park struct {
	epfd int

	mu   sync.Mutex
	open []bool // by descriptor: parked and not closed

	// Loop-only state: frames split over reads, by descriptor.
	partial map[int32][]byte

	stopping atomic.Bool
	done     chan struct{}

	pings, pongErrs, others, dropped atomic.Uint64
}

// Stats are what a Park counted.
type Stats struct {
	// Pings: Engine.IO pings answered. PongErrors: pongs that could not
	// be written. Others: other messages received. Dropped: connections
	// the server closed, or that failed, before Close.
	Pings, PongErrors, Others, Dropped uint64
}

// New starts an empty Park.
func New() (*Park, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("park: epoll_create1: %w", err)
	}
	p := &Park{epfd: epfd, partial: map[int32][]byte{}, done: make(chan struct{})}
	go p.loop()
	return p, nil
}

// Add parks the connection whose socket is fd (non-blocking, with nothing
// read from it but whole frames); the Park owns fd from then on.
func (p *Park) Add(fd int) error {
	p.mu.Lock()
	for fd >= len(p.open) {
		p.open = append(p.open, make([]bool, max(1024, len(p.open)))...)
	}
	p.open[fd] = true
	p.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(fd)}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.closeFD(fd)
		return fmt.Errorf("park: epoll_ctl add %d: %w", fd, err)
	}
	return nil
}

// Stats returns what the Park counted so far.
func (p *Park) Stats() Stats {
	return Stats{Pings: p.pings.Load(), PongErrors: p.pongErrs.Load(),
		Others: p.others.Load(), Dropped: p.dropped.Load()}
}

// Open returns the number of connections parked and still open.
func (p *Park) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, o := range p.open {
		if o {
			n++
		}
	}
	return n
}

// Close stops serving and closes every connection with a TCP reset (no
// TIME_WAIT left behind).
func (p *Park) Close() {
	p.stopping.Store(true)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	linger := syscall.Linger{Onoff: 1, Linger: 0}
	for fd, o := range p.open {
		if o {
			syscall.SetsockoptLinger(fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &linger)
			syscall.Close(fd)
			p.open[fd] = false
		}
	}
	syscall.Close(p.epfd)
}

// closeFD closes a connection the server ended or that failed.
func (p *Park) closeFD(fd int) {
	p.mu.Lock()
	if fd < len(p.open) && p.open[fd] {
		p.open[fd] = false
		syscall.Close(fd)
	}
	p.mu.Unlock()
	delete(p.partial, int32(fd))
}

func (p *Park) loop() {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 256)
	buf := make([]byte, 4096)
	for !p.stopping.Load() {
		n, err := syscall.EpollWait(p.epfd, events, 100)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			p.readable(int(ev.Fd), buf)
		}
	}
}

// readable reads what fd has (level-triggered: what is left is reported
// again) and handles the frames in it.
func (p *Park) readable(fd int, buf []byte) {
	n, err := syscall.Read(fd, buf)
	if err == syscall.EAGAIN || err == syscall.EINTR {
		return
	}
	if err != nil || n == 0 {
		if !p.stopping.Load() {
			p.dropped.Add(1)
		}
		p.closeFD(fd)
		return
	}
	data := buf[:n]
	if prev, ok := p.partial[int32(fd)]; ok {
		data = append(prev, data...)
		delete(p.partial, int32(fd))
	}
	for len(data) > 0 {
		op, payload, size, ok := frame(data)
		if !ok {
			p.partial[int32(fd)] = append([]byte(nil), data...)
			return
		}
		data = data[size:]
		switch op {
		case 0x1: // text: an Engine.IO packet
			if len(payload) == 1 && payload[0] == '2' {
				p.pings.Add(1)
				p.write(fd, pongFrame)
			} else {
				p.others.Add(1)
			}
		case 0x8: // close
			p.dropped.Add(1)
			p.closeFD(fd)
			return
		case 0x9: // websocket ping: pong with the same payload
			if len(payload) <= 125 {
				key := [4]byte{0x55, 0x66, 0x77, 0x88}
				f := append([]byte{0x8A, 0x80 | byte(len(payload))}, key[:]...)
				for i, b := range payload {
					f = append(f, b^key[i&3])
				}
				p.write(fd, f)
			}
		default:
			p.others.Add(1)
		}
	}
}

func (p *Park) write(fd int, f []byte) {
	if n, err := syscall.Write(fd, f); err != nil || n != len(f) {
		p.pongErrs.Add(1)
	}
}

// frame parses the websocket frame at the start of b (from the server:
// unmasked, though a mask is handled): its opcode, payload and size. ok is
// false when b holds only part of it.
func frame(b []byte) (op byte, payload []byte, size int, ok bool) {
	if len(b) < 2 {
		return 0, nil, 0, false
	}
	op = b[0] & 0x0F
	n := uint64(b[1] & 0x7F)
	h := 2
	switch n {
	case 126:
		if len(b) < 4 {
			return 0, nil, 0, false
		}
		n = uint64(b[2])<<8 | uint64(b[3])
		h = 4
	case 127:
		if len(b) < 10 {
			return 0, nil, 0, false
		}
		n = 0
		for _, x := range b[2:10] {
			n = n<<8 | uint64(x)
		}
		h = 10
	}
	masked := b[1]&0x80 != 0
	if masked {
		h += 4
	}
	if uint64(len(b)) < uint64(h)+n {
		return 0, nil, 0, false
	}
	payload = b[h : h+int(n)]
	if masked {
		key := b[h-4 : h]
		for i := range payload {
			payload[i] ^= key[i&3]
		}
	}
	return op, payload, h + int(n), true
}
