'use strict';
// The engine hooks (rally.Options GenerateID, InitialHeaders, Headers,
// OnConnectionError) seen from the official client; run by
// hooks_interop_test.go.
//
// The socket "hooks" connects with withCredentials: true, which gives the
// Node client a cookie jar: it keeps the cookies of polling responses and
// sends them with its later requests, the websocket of an upgrade
// included, as a browser would. Its "connect" line carries the engine id
// (sid) and the socket id.
//
// On websocket, the 101 is the handshake's response: its headers are
// printed as {"event":"ws-headers","hook":...} from the ws WebSocket that
// the client's transport holds (socket.io.engine.transport.ws, an internal
// of engine.io-client 6.6, created when io() returns).
//
// Commands (stdin JSON lines):
//   {"op":"echo","value":v}  emits "echo" and prints {"event":"echoed","value":...}
//   {"op":"refused"}         connects the socket "refused" with the query
//                            refuse=1 and no reconnection: its connect_error
//                            line is printed.
const lib = require('./lib');
const { out } = lib;

const socket = lib.connect('hooks', '', { withCredentials: true });
const transport = socket.io.engine && socket.io.engine.transport;
if (transport && transport.name === 'websocket' && transport.ws) {
  transport.ws.once('upgrade', (res) => {
    out({ event: 'ws-headers', hook: res.headers['x-hook'] || null, cookie: res.headers['set-cookie'] || null });
  });
}

lib.commands(async (cmd) => {
  if (cmd.op === 'echo') {
    const value = await socket.timeout(5000).emitWithAck('echo', cmd.value);
    out({ event: 'echoed', value });
  } else if (cmd.op === 'refused') {
    lib.connect('refused', '', { query: { refuse: '1' }, reconnection: false });
  }
});
