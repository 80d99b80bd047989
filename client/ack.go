package client

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sync/atomic"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/internal/parser"
)

// Ack answers the acknowledgement a server's event asked for, as
// rally.Ack does on the server: a handler takes it as its last parameter
// (before a variadic one) and answers once, now or later, from any
// goroutine, with any number of arguments, or not at all. Such a handler
// may return only an error, answered as {"error": message} if the ack was
// not sent yet.
//
//	c.On("job", func(n int, ack client.Ack) {
//		go func() { ack.Send(work(n)) }()
//	})
type Ack struct {
	st *ackState
}

type ackState struct {
	s    *Socket
	id   int64
	sent atomic.Bool
}

var ackType = reflect.TypeFor[Ack]()

// Requested reports whether the server asked for an acknowledgement.
func (a Ack) Requested() bool { return a.st != nil }

// Send answers the server with args ([]byte values travel as binary). It
// does nothing when no acknowledgement was requested, and fails with
// rally.ErrAckSent after the first call and with rally.ErrDisconnected once
// the socket is no longer connected.
func (a Ack) Send(args ...any) error {
	st := a.st
	if st == nil {
		return nil
	}
	data, atts, err := parser.MarshalAck(args)
	if err != nil {
		return fmt.Errorf("rally/client: encoding the ack: %w", err)
	}
	if !st.sent.CompareAndSwap(false, true) {
		return rally.ErrAckSent
	}
	if !st.s.Connected() {
		return rally.ErrDisconnected
	}
	st.s.sendAck(st.id, data, atts)
	return nil
}

// sendError answers with the error form of an ack, unless it was sent.
func (st *ackState) sendError(err error) {
	if st.sent.CompareAndSwap(false, true) {
		data, _ := json.Marshal([]rally.AckError{{Message: err.Error()}})
		st.s.sendAck(st.id, data, nil)
	}
}

func (s *Socket) sendAck(id int64, data json.RawMessage, atts [][]byte) {
	typ := parser.Ack
	if len(atts) > 0 {
		typ = parser.BinaryAck
	}
	s.mu.Lock()
	sess := s.joined
	s.mu.Unlock()
	if sess != nil {
		sess.send(&parser.Packet{Type: typ, Namespace: s.nsp, ID: id, Data: data, Attachments: atts})
	}
}
