'use strict';
// Connection state recovery, seen by the official client. Driven by the Go
// test through stdin, one JSON command a line:
//
//   {"op":"open","name":"a","opts":{...}}  opens a socket (client options)
//   {"op":"emit","name":"a","ev":"join","args":[...]}
//        emits with an ack; prints {"event":"ack","name","ev","args"}
//   {"op":"cut","name":"a"}        closes the transport under the socket
//                                  (socket.io.engine.close()): the server
//                                  sees the transport close
//   {"op":"connect","name":"a"}    socket.connect()
//   {"op":"disconnect","name":"a"} socket.disconnect()
//
// Prints "ready" once a socket first connected (and upgraded, in the
// default mode), "recovery" lines with its id and recovered flag at each
// connect, and
// {"event":"recv","name","ev","args"} for every event received.
const lib = require('./lib');
const { out, enc, dec } = lib;

const sockets = new Map();

function get(name) {
  const s = sockets.get(name);
  if (!s) throw new Error(`no socket named ${name}`);
  return s;
}

lib.commands(async (cmd) => {
  switch (cmd.op) {
    case 'open': {
      const socket = lib.connect(cmd.name, cmd.path || '', cmd.opts || {});
      sockets.set(cmd.name, socket);
      socket.on('connect', () => {
        out({ event: 'recovery', name: cmd.name, id: socket.id, recovered: socket.recovered });
      });
      socket.onAny((ev, ...args) => out({ event: 'recv', name: cmd.name, ev, args: enc(args) }));
      await lib.ready(socket);
      out({ event: 'ready', name: cmd.name });
      break;
    }
    case 'emit': {
      const args = await get(cmd.name).timeout(10000).emitWithAck(cmd.ev, ...dec(cmd.args || []));
      out({ event: 'ack', name: cmd.name, ev: cmd.ev, args: enc(args === undefined ? null : args) });
      break;
    }
    case 'cut':
      get(cmd.name).io.engine.close();
      break;
    case 'connect':
      get(cmd.name).connect();
      break;
    case 'disconnect':
      get(cmd.name).disconnect();
      break;
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
});
