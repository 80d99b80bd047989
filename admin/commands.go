package admin

import (
	"encoding/json"

	"github.com/rallyhq/rally"
)

// registerCommands adds the handlers of the UI's commands to the admin
// namespace. Each acts on the sockets of a namespace, or of one of its
// rooms (a socket's own id, for one socket), on every server: they are
// Broadcast operations, which an adapter spreads.
//
//	emit(nsp, filter, ev, ...args)
//	join(nsp, room, filter)
//	leave(nsp, room, filter)
//	_disconnect(nsp, close, filter)
func (in *Instrumentation) registerCommands() {
	in.nsp.On("emit", func(_ *rally.Socket, args ...rally.Raw) {
		var nsp, ev string
		if len(args) < 3 || !decode(args[0], &nsp) || !decode(args[2], &ev) {
			return
		}
		if b, ok := in.target(nsp, args[1]); ok {
			b.Emit(ev, rally.Args(args[3:])...)
		}
	})
	in.nsp.On("join", func(_ *rally.Socket, args ...rally.Raw) {
		if b, room, ok := in.roomCommand(args); ok {
			b.SocketsJoin(room)
		}
	})
	in.nsp.On("leave", func(_ *rally.Socket, args ...rally.Raw) {
		if b, room, ok := in.roomCommand(args); ok {
			b.SocketsLeave(room)
		}
	})
	in.nsp.On("_disconnect", func(_ *rally.Socket, args ...rally.Raw) {
		var nsp string
		var closeConn bool
		if len(args) < 2 || !decode(args[0], &nsp) || !decode(args[1], &closeConn) {
			return
		}
		var filter rally.Raw
		if len(args) > 2 {
			filter = args[2]
		}
		if b, ok := in.target(nsp, filter); ok {
			b.DisconnectSockets(closeConn)
		}
	})
}

// roomCommand decodes the arguments of join and leave.
func (in *Instrumentation) roomCommand(args []rally.Raw) (rally.Broadcast, string, bool) {
	var nsp, room string
	if len(args) < 2 || !decode(args[0], &nsp) || !decode(args[1], &room) || room == "" {
		return rally.Broadcast{}, "", false
	}
	var filter rally.Raw
	if len(args) > 2 {
		filter = args[2]
	}
	b, ok := in.target(nsp, filter)
	return b, room, ok
}

// target selects the sockets of the namespace named nsp, those in the
// room filter when it is a non-empty string. Namespaces that do not
// exist are not created: the command is ignored.
func (in *Instrumentation) target(nsp string, filter rally.Raw) (rally.Broadcast, bool) {
	if in.closed.Load() {
		return rally.Broadcast{}, false
	}
	var n *rally.Namespace
	for _, c := range in.hub.Namespaces() {
		if c.Name() == nsp {
			n = c
			break
		}
	}
	if n == nil {
		return rally.Broadcast{}, false
	}
	var room string
	if len(filter.JSON) > 0 {
		json.Unmarshal(filter.JSON, &room) // null, or not a string: every socket
	}
	if room != "" {
		return n.In(room), true
	}
	return n.All(), true
}

// decode decodes a JSON argument into v, reporting whether it could.
func decode(r rally.Raw, v any) bool { return json.Unmarshal(r.JSON, v) == nil }
