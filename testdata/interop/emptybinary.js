'use strict';
// Zero-length binary, client to server and back: an event reflected by a
// []byte handler, one reflected by a ...any handler, and an ack. Round 1 is
// sent on connect; round 2 when the test asks for it (stdin
// {"op":"send","round":2}), once the socket is ready (in the default mode:
// upgraded). The "sending" line names the transport at the time of the
// emit; in the default mode the client holds its writes while it upgrades,
// so round 1 usually leaves on the websocket too: polling is the polling
// mode's.
const lib = require('./lib');
const { out, enc } = lib;

const socket = lib.connect('emptybinary', '');

// kind names what arrived, so that null and an empty buffer differ in the
// output however enc prints them.
function kind(v) {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (Buffer.isBuffer(v)) return 'Buffer';
  if (v instanceof ArrayBuffer) return 'ArrayBuffer';
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  return typeof v;
}

function report(ev, round, v) {
  out({ event: 'recv', ev, round, kind: kind(v), length: v == null ? -1 : v.byteLength, args: enc([v]) });
}

let round = 0;
socket.on('reflect', (v) => report('reflect', round, v));
socket.on('reflectAny', (v) => report('reflectAny', round, v));

function send(n) {
  round = n;
  out({ event: 'sending', round: n, transport: socket.io.engine.transport.name });
  socket.emit('reflect', new Uint8Array(0));
  socket.emit('reflectAny', new Uint8Array(0));
  socket.emit('ackEmpty', new Uint8Array(0), (v) => report('ackEmpty', n, v));
}

socket.once('connect', () => send(1));

lib.commands(async (cmd) => {
  if (cmd.op !== 'send') throw new Error(`unknown command ${JSON.stringify(cmd)}`);
  await lib.ready(socket);
  send(cmd.round);
});
