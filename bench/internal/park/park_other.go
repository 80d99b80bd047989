//go:build !linux

// Package park holds many idle Engine.IO websocket connections on one
// epoll loop; it is Linux only.
package park

import "errors"

// Park is a set of parked connections (Linux only).
type Park struct{}

// Stats are what a Park counted.
type Stats struct{ Pings, PongErrors, Others, Dropped uint64 }

// New fails: parking needs epoll.
func New() (*Park, error) { return nil, errors.New("park: Linux only") }

// Add fails: parking needs epoll.
func (*Park) Add(int) error { return errors.New("park: Linux only") }

// Stats returns nothing counted.
func (*Park) Stats() Stats { return Stats{} }

// Open returns 0.
func (*Park) Open() int { return 0 }

// Close does nothing.
func (*Park) Close() {}
