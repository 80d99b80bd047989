'use strict';
// Helpers shared by the interop scripts that rally's Go tests run with the
// official socket.io-client (see internal/nodetest and interop_test.go).
//
// Environment:
//   RALLY_URL        the server's base URL, e.g. http://127.0.0.1:41234
//   RALLY_TRANSPORT  "default" (polling, then upgrade to websocket),
//                    "websocket" (transports: ['websocket']),
//                    "polling" (transports: ['polling']) or
//                    "deflate" (websocket only; the server compresses)
//
// Output: one JSON object per stdout line, with an "event" key. Binary
// values are printed as {"$buffer": "<hex>"} when they are Node Buffers and
// {"$bytes": "<hex>"} for any other binary type, so Go compares them
// exactly (and notices a wrong type).

const { io } = require('socket.io-client');
const readline = require('node:readline');

const url = process.env.RALLY_URL;
if (!url) {
  throw new Error('RALLY_URL is not set');
}
const mode = process.env.RALLY_TRANSPORT || 'default';
if (!['default', 'websocket', 'polling', 'deflate'].includes(mode)) {
  throw new Error(`unknown RALLY_TRANSPORT ${mode}`);
}

// out prints one JSON line.
function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// A script that throws fails its Go test at once (nodetest stops waiting on
// a "fatal" line).
function fatal(err) {
  out({ event: 'fatal', error: String((err && err.stack) || err) });
  process.exit(1);
}
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);

function hex(buf) {
  return Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('hex');
}

// enc turns received values into JSON-printable ones, binary included.
function enc(v) {
  if (Buffer.isBuffer(v)) return { $buffer: hex(v) };
  if (ArrayBuffer.isView(v)) return { $bytes: hex(v) };
  if (v instanceof ArrayBuffer) return { $bytes: Buffer.from(v).toString('hex') };
  if (Array.isArray(v)) return v.map(enc);
  if (typeof v === 'function') return { $function: true };
  if (v === undefined) return { $undefined: true };
  if (v !== null && typeof v === 'object') {
    const o = {};
    for (const k of Object.keys(v)) o[k] = enc(v[k]);
    return o;
  }
  return v;
}

// dec is the inverse of enc for values the Go test sends: {"$buffer": hex}
// becomes a Buffer.
function dec(v) {
  if (Array.isArray(v)) return v.map(dec);
  if (v !== null && typeof v === 'object') {
    if (typeof v.$buffer === 'string' && Object.keys(v).length === 1) {
      return Buffer.from(v.$buffer, 'hex');
    }
    const o = {};
    for (const k of Object.keys(v)) o[k] = dec(v[k]);
    return o;
  }
  return v;
}

// options returns the client options of the transport mode, plus extra.
function options(extra) {
  const o = {};
  if (mode === 'websocket' || mode === 'deflate') o.transports = ['websocket'];
  if (mode === 'polling') o.transports = ['polling'];
  return Object.assign(o, extra);
}

// Managers and engines get small ids so Go can tell which sockets share a
// connection.
const managerIDs = new WeakMap();
let nextManagerID = 1;
function managerID(m) {
  if (!managerIDs.has(m)) managerIDs.set(m, nextManagerID++);
  return managerIDs.get(m);
}

const hookedEngines = new WeakSet();
// hookEngine prints an "upgrade" line when the manager's engine switches
// transport, once per engine.
function hookEngine(manager) {
  const engine = manager.engine;
  if (!engine || hookedEngines.has(engine)) return;
  hookedEngines.add(engine);
  engine.on('upgrade', () => {
    out({ event: 'upgrade', sid: engine.id, manager: managerID(manager), transport: engine.transport.name });
  });
}

// connect opens a socket to RALLY_URL + path (or to an absolute URL) with
// the mode's options and prints its life: "connect", "connect_error",
// "disconnect" lines carry its name.
function connect(name, path, extra) {
  const target = /^[a-z]+:\/\//.test(path || '') ? path : url + (path || '');
  const socket = io(target, options(extra));
  const manager = socket.io;
  hookEngine(manager);
  manager.on('open', () => hookEngine(manager));
  manager.on('reconnect_attempt', (n) => out({ event: 'reconnect_attempt', name, attempt: n }));
  socket.on('connect', () => {
    out({
      event: 'connect', name, id: socket.id, nsp: socket.nsp,
      sid: manager.engine.id, manager: managerID(manager),
      transport: manager.engine.transport.name,
    });
  });
  socket.on('connect_error', (err) => {
    out({ event: 'connect_error', name, message: err.message, data: enc(err.data), active: socket.active });
  });
  socket.on('disconnect', (reason) => {
    out({ event: 'disconnect', name, reason, active: socket.active });
  });
  return socket;
}

// ready resolves once the socket is connected and, in the default mode, its
// connection has upgraded to websocket.
function ready(socket) {
  return new Promise((resolve) => {
    let engine;
    const check = () => {
      if (!socket.connected) return;
      if (mode === 'default' && socket.io.engine.transport.name !== 'websocket') {
        if (engine !== socket.io.engine) {
          engine = socket.io.engine;
          engine.on('upgrade', check);
        }
        return;
      }
      socket.off('connect', check);
      if (engine) engine.off('upgrade', check);
      resolve();
    };
    socket.on('connect', check);
    check();
  });
}

// commands calls handler with each JSON line read from stdin; the script
// exits when stdin closes (the Go test ended).
function commands(handler) {
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    if (line.trim() === '') return;
    Promise.resolve().then(() => handler(JSON.parse(line))).catch(fatal);
  });
  rl.on('close', () => process.exit(0));
}

module.exports = { url, mode, out, enc, dec, options, connect, ready, commands, fatal };
