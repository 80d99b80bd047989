'use strict';
// A client driven by the Go test through stdin, one JSON command a line:
//
//   {"op":"open","name":"a","path":"/admin","opts":{...},"replies":{"ev":[...]|"echo"}}
//        opens a socket (opts are client options: auth, query, forceNew...);
//        replies answers server acks of event ev with fixed args, or echoes
//        the event's args. Prints "connect"/"connect_error" (see lib.js),
//        then {"event":"ready","name":...} once connected (and upgraded, in
//        the default mode).
//   {"op":"emit","name":"a","ev":"join","args":[...],"ack":true,"tag":"t1","timeout":ms}
//        emits (args, or argsJSON: the same as JSON text, keys in its order);
//        with ack, prints {"event":"ack","name","tag","args"}, or
//        with "error" set when no ack came within timeout (10 s).
//   {"op":"disconnect","name":"a"}    socket.disconnect()
//   {"op":"state","name":"a"}         prints {"event":"state",...}
//   {"op":"exit"}
//
// Every event a socket receives is printed as
// {"event":"recv","name":...,"ev":...,"args":[...]} (binary as {"$buffer":hex}).
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
      if (sockets.has(cmd.name)) throw new Error(`socket ${cmd.name} exists`);
      const socket = lib.connect(cmd.name, cmd.path || '', cmd.opts || {});
      sockets.set(cmd.name, socket);
      const replies = cmd.replies || {};
      socket.onAny((ev, ...args) => {
        const cb = typeof args[args.length - 1] === 'function' ? args.pop() : null;
        out({ event: 'recv', name: cmd.name, ev, args: enc(args), ack: cb !== null });
        if (!cb) return;
        const reply = replies[ev];
        if (reply === 'echo') cb(...args);
        else if (Array.isArray(reply)) cb(...dec(reply));
      });
      await lib.ready(socket);
      out({ event: 'ready', name: cmd.name, id: socket.id, sid: socket.io.engine.id, transport: socket.io.engine.transport.name });
      break;
    }
    case 'emit': {
      const socket = get(cmd.name);
      // argsJSON, when set, is the arguments as JSON text: objects keep
      // the key order the test chose.
      const args = dec(cmd.argsJSON ? JSON.parse(cmd.argsJSON) : cmd.args || []);
      if (cmd.ack) {
        socket.timeout(cmd.timeout || 10000).emit(cmd.ev, ...args, (err, ...res) => {
          out({ event: 'ack', name: cmd.name, tag: cmd.tag, error: err ? err.message : null, args: enc(res) });
        });
      } else {
        socket.emit(cmd.ev, ...args);
      }
      break;
    }
    case 'disconnect':
      get(cmd.name).disconnect();
      break;
    case 'state': {
      const s = get(cmd.name);
      out({ event: 'state', name: cmd.name, tag: cmd.tag, connected: s.connected, active: s.active, id: s.id || null });
      break;
    }
    case 'exit':
      process.exit(0);
      break;
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
});
