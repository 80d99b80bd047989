package wsclient

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// Detach hands the connection's socket over to the caller and releases
// the Conn: it returns a duplicate of the socket's file descriptor
// (non-blocking, close-on-exec) and closes the Conn's own, which leaves
// the connection open. It is for parking many idle connections on one
// epoll loop (internal/park) rather than on a goroutine and a read buffer
// each. It fails when the Conn has read bytes that it has not returned.
func (c *Conn) Detach() (int, error) {
	if c.br.Buffered() > 0 {
		c.nc.Close()
		return -1, fmt.Errorf("wsclient: detach: %d bytes read but not handled", c.br.Buffered())
	}
	tc, ok := c.nc.(*net.TCPConn)
	if !ok {
		c.nc.Close()
		return -1, errors.New("wsclient: detach: not a TCP connection")
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		c.nc.Close()
		return -1, fmt.Errorf("wsclient: detach: %w", err)
	}
	fd := -1
	var dupErr error
	if err := rc.Control(func(s uintptr) {
		r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		if errno != 0 {
			dupErr = errno
			return
		}
		fd = int(r)
	}); err != nil {
		dupErr = err
	}
	c.nc.Close() // closes this descriptor only: the duplicate keeps the socket
	if dupErr != nil {
		return -1, fmt.Errorf("wsclient: detach: duplicating the socket: %w", dupErr)
	}
	return fd, nil
}
