//go:build !linux

package ws

import "net"

// Without epoll every served connection is read by its own goroutine.

type pollState struct{}

func watch(c *Conn) bool          { return false }
func unwatch(c *Conn)             {}
func restartReads(c *Conn)        {}
func hungUp(nc net.Conn) bool     { return false }
func unsentBytes(nc net.Conn) int { return -1 }
