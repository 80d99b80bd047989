package rally

import (
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"

	"github.com/rallyhq/rally/internal/parser"
)

// Ack answers the acknowledgement an event asked for: the callback the
// client passed as the event's last argument (socket.emit("ev", ...args,
// callback)). A handler takes it as its last parameter, before a variadic
// one:
//
//	hub.On("echo", func(s *rally.Socket, ack rally.Ack, args ...any) {
//		ack.Send(args...) // as many arguments as came
//	})
//	hub.On("job", func(s *rally.Socket, n int, ack rally.Ack) {
//		go func() { ack.Send(work(n)) }() // later: the socket's next events do not wait
//	})
//
// A handler that takes an Ack answers only through it, once, now or later,
// from any goroutine, or not at all: its results may only be an error,
// which answers {"error": message} if the ack was not sent yet. The zero
// Ack, and the Ack of an event sent without a callback, send nothing.
type Ack struct {
	st *ackState
}

type ackState struct {
	s    *Socket
	id   int64
	sent atomic.Bool
	// inHandler is set while the handler that got the Ack runs on the
	// socket's goroutine, which then writes the answer itself.
	inHandler atomic.Bool
}

var ackType = reflect.TypeFor[Ack]()

// ErrAckSent is returned by Ack.Send after the ack was sent: the client's
// callback runs once.
var ErrAckSent = errors.New("rally: the ack was already sent")

// Requested reports whether the client asked for an acknowledgement.
func (a Ack) Requested() bool { return a.st != nil }

// Send answers the client's callback with args, encoded as Emit encodes
// them ([]byte values, anywhere, travel as binary). It does nothing when
// no acknowledgement was requested, and fails with ErrAckSent after the
// first call and with ErrDisconnected once the socket has disconnected.
func (a Ack) Send(args ...any) error {
	st := a.st
	if st == nil {
		return nil
	}
	data, atts, err := parser.MarshalAck(args)
	if err != nil {
		return fmt.Errorf("rally: encoding the ack: %w", err)
	}
	if !st.sent.CompareAndSwap(false, true) {
		return ErrAckSent
	}
	if !st.s.isConnected() {
		return ErrDisconnected
	}
	st.s.writeAck(st.id, data, atts, st.inHandler.Load())
	return nil
}

// newAck returns the Ack of an event with the given id (none for NoID),
// for a handler about to run on the socket's goroutine.
func (s *Socket) newAck(id int64) Ack {
	if id == parser.NoID {
		return Ack{}
	}
	st := &ackState{s: s, id: id}
	st.inHandler.Store(true)
	return Ack{st: st}
}

// handlerReturned notes that the handler that got a is done: a later
// Send comes from another goroutine.
func (a Ack) handlerReturned() {
	if a.st != nil {
		a.st.inHandler.Store(false)
	}
}

// sendError answers with the error form of an ack, unless it was sent.
func (st *ackState) sendError(err error) {
	if st.sent.CompareAndSwap(false, true) {
		st.s.ackError(st.id, err)
	}
}
