//go:build !linux

package ws

// Without epoll every served connection is read by its own goroutine.

type pollState struct{}

func watch(c *Conn) bool { return false }
func unwatch(c *Conn)    {}
