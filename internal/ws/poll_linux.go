package ws

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/rallyhq/rally/internal/gopool"
)

// The poller watches every served connection of the process with one epoll
// instance, so that a connection waiting for its client costs no goroutine
// (and no stack) and no read buffer. When a connection has bytes waiting,
// the poller's goroutine hands a read to one of its pooled workers, which
// reads with non-blocking system calls until the socket is drained.
//
// Registrations are edge-triggered and stay armed. A per-connection state
// keeps reads of one connection from overlapping: an event that arrives
// while a read runs marks it to drain once more instead of starting another.
//
// Registrations are changed inside syscall.RawConn.Control, which holds the
// descriptor open: a connection closed meanwhile fails the call instead of
// touching a reused descriptor number. Events carry a connection id, never
// the descriptor, for the same reason.
//
// The epoll descriptor is itself watched by the Go runtime's network poller
// (an epoll descriptor is readable while it has events), so the poller's
// goroutine parks like any network read instead of holding a thread in
// epoll_wait.
//
// The poller exists while it watches something: the last connection to
// leave closes it, which ends its goroutine.

type poller struct {
	epfd    int
	file    *os.File         // epfd, for the runtime's poller
	rc      syscall.RawConn  // of file
	conns   map[uint64]*Conn // by id
	workers *gopool.Pool     // reads
}

// pollState is what a watched Conn holds for the poller.
type pollState struct {
	id    uint64 // 0 when not watched
	rc    syscall.RawConn
	state atomic.Int32 // readIdle, reading or readAgain
	hup   atomic.Bool  // the peer hung up: read to the end

	// One non-blocking read(2), bound once with its arguments and results
	// so that reading allocates nothing.
	readFn func(fd uintptr) bool
	buf    []byte
	n      int
	err    error
}

const (
	readIdle  = iota
	reading   // a read runs
	readAgain // a read runs and more arrived since it started
)

var polling struct {
	sync.Mutex
	p      *poller
	nextID uint64
}

// watchEvents as epoll_event.events; syscall.EPOLLET is a negative constant.
const watchEvents = (syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLET) & 0xffffffff

// watch registers c with the poller. It reports false when c cannot be
// watched (not a TCP connection, or epoll failed); c is then read by a
// goroutine.
func watch(c *Conn) bool {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	c.poll.rc = rc
	c.poll.readFn = func(fd uintptr) bool {
		c.poll.n, c.poll.err = syscall.Read(int(fd), c.poll.buf)
		return true // never wait: the poller says when to read
	}

	polling.Lock()
	defer polling.Unlock()
	if polling.p == nil {
		p, err := newPoller()
		if err != nil {
			return false
		}
		polling.p = p
		go p.run()
	}
	p := polling.p
	polling.nextID++
	id := polling.nextID
	var ctlErr error
	err = rc.Control(func(fd uintptr) {
		ctlErr = epollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), id)
	})
	if err != nil || ctlErr != nil {
		p.stopIfIdle()
		return false
	}
	c.poll.id = id
	p.conns[id] = c // bytes already waiting are reported at once
	if c.endError() != nil {
		// Closed meanwhile: its unwatch may have come before the
		// registration. Nothing is left to read.
		rc.Control(func(fd uintptr) { epollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), 0) })
		delete(p.conns, id)
		c.poll.id = 0
		p.stopIfIdle()
	}
	return true
}

// unwatch removes c from the poller before its descriptor is closed.
func unwatch(c *Conn) {
	polling.Lock()
	defer polling.Unlock()
	p := polling.p
	if p == nil || c.poll.id == 0 {
		return
	}
	c.poll.rc.Control(func(fd uintptr) {
		epollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), 0)
	})
	delete(p.conns, c.poll.id)
	c.poll.id = 0
	p.stopIfIdle()
}

// notify reports whether a read of c is to start, or asks the running one
// to drain again.
func (c *Conn) notify() bool {
	for {
		switch c.poll.state.Load() {
		case readIdle:
			if c.poll.state.CompareAndSwap(readIdle, reading) {
				return true
			}
		case reading:
			if c.poll.state.CompareAndSwap(reading, readAgain) {
				return false
			}
		default:
			return false
		}
	}
}

// startReads drains the connections of one epoll_wait on the poller's
// workers: as many as the Go scheduler runs at once, each taking its share
// in turn, so that a busy poller does not pay a goroutine hand-off for
// every connection.
func (p *poller) startReads(conns []*Conn) {
	workers := min(len(conns), runtime.GOMAXPROCS(0))
	for w := range workers {
		share := slices.Clone(conns[w*len(conns)/workers : (w+1)*len(conns)/workers])
		p.workers.Go(func() {
			for _, c := range share {
				c.readable()
			}
		})
	}
}

// readable drains c, again while events came in meanwhile.
func (c *Conn) readable() {
	buf := getReadBuffer()
	defer putReadBuffer(buf)
	for {
		switch c.drain(*buf) {
		case drainStopped:
			return
		case drainYield:
			// Still marked reading: the connection takes its turn
			// again behind the others.
			scheduleRead(c)
			return
		case drainPaused:
			if c.poll.hup.Load() {
				c.stop(io.EOF) // what the peer sent before leaving is not wanted
				return
			}
			c.poll.state.Store(readIdle)
			if c.paused.Load() || !c.notify() {
				return // Resume starts the next read
			}
			// Resumed meanwhile, and no other read started: go on.
		case drainEmpty:
			if c.poll.state.CompareAndSwap(reading, readIdle) {
				return
			}
			c.poll.state.Store(reading)
		}
	}
}

// How a drain ended.
const (
	drainEmpty   = iota // the socket has nothing more for now
	drainStopped        // the connection ended
	drainPaused         // Pause was called
	drainYield          // the turn's budget was spent; more is waiting
)

// readBudget bounds what one connection reads in one turn, so that a client
// that keeps sending cannot keep a worker from the other connections.
const readBudget = 64 << 10

// drain reads until the socket has nothing more, the turn's budget is
// spent or reading is paused.
func (c *Conn) drain(buf []byte) int {
	budget := readBudget
	for {
		if c.paused.Load() {
			return drainPaused
		}
		if budget <= 0 {
			return drainYield
		}
		c.poll.buf = buf
		err := c.poll.rc.Read(c.poll.readFn)
		n, rerr := c.poll.n, c.poll.err
		c.poll.buf, c.poll.err = nil, nil
		switch {
		case err != nil: // closed here
			c.received(nil, err)
			return drainStopped
		case rerr == syscall.EAGAIN:
			return drainEmpty
		case rerr == syscall.EINTR:
			continue
		case rerr != nil:
			c.received(nil, os.NewSyscallError("read", rerr))
			return drainStopped
		case n == 0:
			c.received(nil, io.EOF)
			return drainStopped
		}
		if !c.received(buf[:n], nil) {
			return drainStopped
		}
		budget -= n
		if n < len(buf) && !c.poll.hup.Load() && !c.paused.Load() {
			// Drained: whatever arrives later raises a new edge. A
			// hang-up raises none; then read on to the end of file.
			return drainEmpty
		}
	}
}

// scheduleRead runs a read of c, already marked reading, on a worker.
func scheduleRead(c *Conn) {
	polling.Lock()
	p := polling.p
	polling.Unlock()
	if p == nil {
		return // no longer watched: it was closed
	}
	p.workers.Go(c.readable)
}

// restartReads reads c again after Resume, if the poller watches it.
func restartReads(c *Conn) {
	polling.Lock()
	watched := c.poll.id != 0
	polling.Unlock()
	if watched && c.notify() {
		scheduleRead(c)
	}
}

// socketOf returns the socket under nc, a TLS connection's included, or
// nil.
func socketOf(nc net.Conn) syscall.RawConn {
	if u, ok := nc.(interface{ NetConn() net.Conn }); ok {
		nc = u.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// unsentBytes returns how many bytes written to a TCP connection the kernel
// has yet to send (SIOCOUTQ), or -1 when it cannot tell.
func unsentBytes(nc net.Conn) int {
	rc := socketOf(nc)
	if rc == nil {
		return -1
	}
	const siocoutq = 0x5411
	n := -1
	rc.Control(func(fd uintptr) {
		var v int32
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, siocoutq, uintptr(unsafe.Pointer(&v))); errno == 0 {
			n = int(v)
		}
	})
	return n
}

// hungUp reports whether the peer of a TCP connection closed its side,
// even though bytes it sent before are still unread.
func hungUp(nc net.Conn) bool {
	rc := socketOf(nc)
	if rc == nil {
		return false
	}
	// The first byte of struct tcp_info is the connection's state.
	const tcpClose, tcpCloseWait = 7, 8
	var state byte
	rc.Control(func(fd uintptr) {
		var info [8]byte
		size := uint32(len(info))
		_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&size)), 0)
		if errno == 0 {
			state = info[0]
		}
	})
	return state == tcpClose || state == tcpCloseWait
}

func newPoller() (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, os.NewSyscallError("setnonblock", err)
	}
	file := os.NewFile(uintptr(epfd), "websocket-epoll") // pollable: non-blocking
	rc, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, err
	}
	return &poller{epfd: epfd, file: file, rc: rc, conns: make(map[uint64]*Conn),
		workers: gopool.New(5 * time.Second)}, nil
}

// stopIfIdle stops the loop when no connection is left. polling is locked.
func (p *poller) stopIfIdle() {
	if len(p.conns) == 0 {
		p.file.Close() // ends run's wait
		polling.p = nil
	}
}

func (p *poller) run() {
	defer p.workers.Close(time.Second) // once stopped, reads still running end soon
	events := make([]syscall.EpollEvent, 256)
	ready := make([]*Conn, 0, len(events))
	var n int
	var werr error
	wait := func(fd uintptr) bool {
		n, werr = syscall.EpollWait(int(fd), events, 0)
		return n > 0 || werr != nil && werr != syscall.EINTR
	}
	for {
		err := p.rc.Read(wait)
		if err != nil {
			return // closed by stopIfIdle
		}
		if werr != nil {
			panic(fmt.Sprintf("websocket: epoll_wait: %v", werr)) // only a bug gets here
		}
		polling.Lock()
		for _, ev := range events[:n] {
			if c := p.conns[uint64(uint32(ev.Fd))|uint64(uint32(ev.Pad))<<32]; c != nil {
				if ev.Events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
					c.poll.hup.Store(true)
				}
				ready = append(ready, c)
			}
		}
		polling.Unlock()
		start := ready[:0]
		for _, c := range ready {
			if c.notify() {
				start = append(start, c)
			}
		}
		p.startReads(start)
		clear(ready)
		ready = ready[:0]
	}
}

func epollCtl(epfd, op, fd int, id uint64) error {
	ev := syscall.EpollEvent{Events: watchEvents, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
	if err := syscall.EpollCtl(epfd, op, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}
