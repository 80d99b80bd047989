package wsclient

import (
	"net"
	"syscall"
)

// ipBindAddressNoPort is Linux's IP_BIND_ADDRESS_NO_PORT socket option.
const ipBindAddressNoPort = 24

// dial opens the TCP connection, from opts.LocalAddr when set. A source
// address has its own ephemeral ports, so connections spread over several
// (the whole 127.0.0.0/8 is loopback on Linux) can outnumber the port
// range. IP_BIND_ADDRESS_NO_PORT defers picking the port from bind to
// connect, where it only has to be unique for the destination too.
func dial(addr string, opts Options) (net.Conn, error) {
	d := net.Dialer{Timeout: opts.Timeout}
	if opts.LocalAddr != nil {
		d.LocalAddr = &net.TCPAddr{IP: opts.LocalAddr}
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var err error
			rc.Control(func(fd uintptr) {
				err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
			})
			return err
		}
	}
	return d.Dial("tcp", addr)
}
