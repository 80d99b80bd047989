package client

import (
	"bytes"
	"encoding/json"

	"github.com/rallyhq/rally/internal/parser"
)

// Connection state recovery, the client's side, as the official client
// does it: the server's CONNECT reply carries a private session id (pid)
// when recovery is on; every event the server broadcasts then ends with
// its offset; a reconnection's CONNECT presents both, and the server, if
// it still has the session, gives back the socket's id and rooms and sends
// the events sent after that offset.

// connectDataLocked returns the data of the socket's CONNECT: its auth,
// with the pid and the last offset when a pid is known; keys of the auth
// object take precedence, as with the official client's Object.assign.
func (s *Socket) connectDataLocked() json.RawMessage {
	if s.pid == "" {
		return s.authJSON
	}
	var fields map[string]json.RawMessage
	if len(s.authJSON) > 0 && json.Unmarshal(s.authJSON, &fields) != nil {
		return s.authJSON // not an object: sent as it is, without recovery
	}
	if fields == nil {
		fields = make(map[string]json.RawMessage)
	}
	if _, ok := fields["pid"]; !ok {
		fields["pid"], _ = json.Marshal(s.pid)
	}
	if _, ok := fields["offset"]; !ok && s.offset != "" {
		fields["offset"], _ = json.Marshal(s.offset)
	}
	data, _ := json.Marshal(fields)
	return data
}

// connectedPIDLocked takes the pid of a CONNECT reply: the state was
// recovered when it is the one sent. A new session's pid (or none) starts
// without an offset: the official client keeps the old session's, which a
// server cannot place in the new session's events.
func (s *Socket) connectedPIDLocked(pid string) {
	s.recovered = pid != "" && pid == s.pid
	if pid != s.pid {
		s.offset = ""
	}
	s.pid = pid
}

// noteOffsetLocked records the offset of an event, when the server has
// recovery on: its last argument when that is a string, as the official
// client does. Events that ask for an ack have none (the official client's
// last argument is then its ack function).
func (s *Socket) noteOffsetLocked(p *parser.Packet) {
	if s.pid == "" || p.ID != parser.NoID {
		return
	}
	elems, err := parser.SplitArray(p.Data)
	if err != nil || len(elems) < 2 {
		return
	}
	last := bytes.TrimSpace(elems[len(elems)-1])
	var offset string
	if len(last) > 0 && last[0] == '"' && json.Unmarshal(last, &offset) == nil {
		s.offset = offset
	}
}

// forgetSessionLocked drops the pid and offset when the socket's session
// ended on purpose (disconnected by either side, or refused), so that a
// later Connect starts a new one. The official client keeps them and
// presents them again after disconnect() and connect(); the Node server,
// which keeps a restored session, then recovers it.
func (s *Socket) forgetSessionLocked() {
	s.pid, s.offset = "", ""
}
