package ws

import (
	"fmt"
	"os"
	"sync"
	"syscall"
)

// The poller watches every served connection of the process with one epoll
// instance, so that a connection waiting for its client costs no goroutine
// (and no stack) and no read buffer. When a connection has bytes waiting,
// the poller's goroutine hands a read to the connection's Go function; the
// registration is one-shot and rearmed after the read, so reads of one
// connection never overlap and stay in order.
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
	epfd  int
	file  *os.File         // epfd, for the runtime's poller
	rc    syscall.RawConn  // of file
	conns map[uint64]*Conn // by id
}

var polling struct {
	sync.Mutex
	p      *poller
	nextID uint64
}

const watchEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT

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
	polling.nextID++
	id := polling.nextID
	var ctlErr error
	err = rc.Control(func(fd uintptr) {
		ctlErr = epollCtl(polling.p.epfd, syscall.EPOLL_CTL_ADD, int(fd), id)
	})
	if err != nil || ctlErr != nil {
		polling.p.stopIfIdle()
		return false
	}
	c.pollID = id
	polling.p.conns[id] = c
	return true
}

// rearm watches c again after a read.
func rearm(c *Conn) {
	polling.Lock()
	defer polling.Unlock()
	p := polling.p
	if p == nil || c.pollID == 0 {
		return // unwatched meanwhile
	}
	rc, err := c.nc.(syscall.Conn).SyscallConn()
	if err != nil {
		return
	}
	var ctlErr error
	err = rc.Control(func(fd uintptr) {
		ctlErr = epollCtl(p.epfd, syscall.EPOLL_CTL_MOD, int(fd), c.pollID)
	})
	if err == nil && ctlErr != nil {
		// The registration is gone although the descriptor is open:
		// nothing would ever read this connection again.
		defer func() { go c.fail(fmt.Errorf("websocket: rearm epoll: %w", ctlErr)) }()
	}
}

// unwatch removes c from the poller before its descriptor is closed.
func unwatch(c *Conn) {
	polling.Lock()
	defer polling.Unlock()
	p := polling.p
	if p == nil || c.pollID == 0 {
		return
	}
	if rc, err := c.nc.(syscall.Conn).SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			epollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), 0)
		})
	}
	delete(p.conns, c.pollID)
	c.pollID = 0
	p.stopIfIdle()
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
	return &poller{epfd: epfd, file: file, rc: rc, conns: make(map[uint64]*Conn)}, nil
}

// stopIfIdle stops the loop when no connection is left. polling is locked.
func (p *poller) stopIfIdle() {
	if len(p.conns) == 0 {
		p.file.Close() // ends run's wait
		polling.p = nil
	}
}

func (p *poller) run() {
	events := make([]syscall.EpollEvent, 256)
	for {
		var n int
		var werr error
		err := p.rc.Read(func(fd uintptr) bool {
			n, werr = syscall.EpollWait(int(fd), events, 0)
			return n > 0 || werr != nil && werr != syscall.EINTR
		})
		if err != nil {
			return // closed by stopIfIdle
		}
		if werr != nil {
			panic(fmt.Sprintf("websocket: epoll_wait: %v", werr)) // only a bug gets here
		}
		for _, ev := range events[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			polling.Lock()
			c := p.conns[id]
			polling.Unlock()
			if c != nil {
				c.goFn(c.read)
			}
		}
	}
}

func epollCtl(epfd, op, fd int, id uint64) error {
	ev := syscall.EpollEvent{Events: watchEvents, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
	if err := syscall.EpollCtl(epfd, op, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}
