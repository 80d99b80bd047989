'use strict';
// The Socket.IO v2 client (socket.io-client 2.x: Engine.IO 3, Socket.IO
// protocol v4), against rally with AllowEIO3 or against Node's server with
// allowEIO3: true (server.js's "eio3" scenario). Usage: node v2.js <part>,
// part one of
//   all    a transcript of the README's exchange, acks both ways with
//          binary, non-ASCII text, rooms and broadcasts, a namespace whose
//          middleware reads the query, connect errors and disconnections
//          both ways, printed as one "transcript" line;
//   mixed  a v2 client and a current (v4) client in one room, each
//          printing the broadcast it received;
//   idle   a client that stays connected for RALLY_IDLE_MS, its engine
//          pinging the server, then prints how many pongs it got.
//
// RALLY_TRANSPORT as in lib.js ("default", "websocket", "polling"), and
// RALLY_B64=1 for forceBase64 (binary as base64 text, b64=1).
const lib = require('./lib');
const ioV2 = require('socket.io-client-v2');

const part = process.argv[2];

// options returns the v2 client options of the transport mode, plus extra.
function options(extra) {
  const o = { reconnection: false };
  if (lib.mode === 'websocket') o.transports = ['websocket'];
  if (lib.mode === 'polling') o.transports = ['polling'];
  if (process.env.RALLY_B64 === '1') o.forceBase64 = true;
  return Object.assign(o, extra);
}

// connect opens a v2 socket to RALLY_URL + path.
function connect(path, extra) {
  return ioV2(lib.url + path, options(extra));
}

function once(socket, ev) {
  return new Promise((resolve) => socket.once(ev, (...args) => resolve(args)));
}

// ack emits ev with args and resolves with every argument of the ack.
function ack(socket, ev, ...args) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for ${ev}`)), 5000);
    socket.emit(ev, ...args, (...reply) => {
      clearTimeout(timer);
      resolve(reply);
    });
  });
}

// connected resolves once the socket is connected and, in the default
// mode, its engine upgraded to websocket; it rejects on an error.
function connected(socket) {
  return new Promise((resolve, reject) => {
    const done = () => {
      const engine = socket.io.engine;
      if (lib.mode === 'default' && engine.transport.name !== 'websocket') {
        engine.once('upgrade', done);
        return;
      }
      resolve();
    };
    if (socket.connected) done();
    else socket.once('connect', done);
    socket.once('error', reject);
  });
}

async function all() {
  const t = {};
  const a = connect('/', { query: { name: 'a' } });
  const greeting = once(a, 'greetings');
  const echoed = once(a, 'message');
  await connected(a);
  t.transport = a.io.engine.transport.name;
  t.greetings = lib.enc(await greeting);
  a.send('Hello!');
  t.message = lib.enc(await echoed);
  a.emit('salutations', 'Hello!', { mr: 'john' }, Buffer.from([1, 2, 3, 4]));

  // The server's view of the socket: its id, the handshake query.
  const [who] = await ack(a, 'whoami');
  t.whoami = { idIsEngine: who.id === a.io.engine.id, clientID: a.id === who.id, query: who.query };

  // Acks from the server, binary anywhere, non-ASCII text (counted in
  // UTF-16 code units by polling payloads), a body large enough to be
  // gzipped.
  t.echo = lib.enc(await ack(a, 'echo', 'text', { bin: Buffer.from([1, 2]), list: [Buffer.from([3]), null] },
    Buffer.from([4, 5]), 42, -1.5, true, null));
  t.unicode = await ack(a, 'echo', 'héllo € 😀 \u2028', { 'ключ': '값' });
  const big = 'é😀x'.repeat(1000);
  t.big = (await ack(a, 'echo', big))[0] === big;
  t.divide = lib.enc(await ack(a, 'divide', 1, 4));
  t.failing = lib.enc(await ack(a, 'divide', 1, 0));

  // Acks from the client: the server asks with binary, the answer has
  // binary too.
  a.on('ask', (x, cb) => cb({ got: x, bin: Buffer.from([9, 8]) }));
  t.asked = lib.enc(await ack(a, 'ask me'));

  // Rooms and broadcasts: a and b join "r", c does not.
  const b = connect('/', { forceNew: true });
  const c = connect('/', { forceNew: true });
  await Promise.all([connected(b), connected(c)]);
  await ack(a, 'join', 'r');
  await ack(b, 'join', 'r');
  const got = { a: [], b: [], c: [] };
  for (const [name, s] of [['a', a], ['b', b], ['c', c]]) {
    s.on('room news', (...args) => got[name].push(['room news', ...lib.enc(args)]));
    s.on('all news', (...args) => got[name].push(['all news', ...lib.enc(args)]));
  }
  await ack(a, 'to room', 'r');
  await ack(a, 'everyone');
  await Promise.all([ack(b, 'divide', 1, 1), ack(c, 'divide', 1, 1)]);
  t.broadcasts = got;

  // A namespace on the same connection, its middleware reading the query.
  const admin = connect('/admin', { query: { token: 'secret' } });
  await connected(admin);
  const [where] = await ack(admin, 'where', Buffer.from([1]));
  t.admin = {
    nsp: where.nsp, token: where.token, bin: lib.enc(where.bin),
    id: where.id === '/admin#' + a.io.engine.id, clientID: admin.id === where.id,
  };

  // Refusals: a ConnectError with data, one with a message only, an
  // unknown namespace. Socket.IO v2 clients get them as "error".
  const refused = async (path, query) => {
    const s = connect(path, query ? { query } : {});
    const [e] = await once(s, 'error');
    s.close();
    return lib.enc(e);
  };
  t.private = await refused('/private', { token: 'wrong' });
  t.denied = await refused('/denied');
  t.nope = await refused('/nope');

  // Disconnections: the server drops a socket of a namespace, the client
  // leaves one; the main namespace stays connected.
  const kicked = once(admin, 'disconnect');
  admin.emit('kick me');
  t.kicked = (await kicked)[0];
  admin.connect(); // the same socket again: CONNECT, with the query
  await connected(admin);
  t.reconnected = admin.connected;
  admin.close();
  // The server sees the client leave (its disconnect handler runs on
  // its own, after what "/" answers next: ask until it did).
  for (let i = 0; i < 100; i++) {
    t.left = (await ack(a, 'last reason'))[0];
    if (t.left !== 'server namespace disconnect') break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.stillConnected = a.connected;

  lib.out({ event: 'transcript', transcript: t });
  for (const s of [a, b, c]) s.close();
  lib.out({ event: 'done' });
}

// mixed puts a v2 client and a current client in one room and prints what
// each received of a broadcast to it.
async function mixed() {
  const v2 = connect('/', { forceNew: true });
  const v4 = lib.connect('v4', '/', { forceNew: true });
  await connected(v2);
  await new Promise((resolve) => (v4.connected ? resolve() : v4.once('connect', resolve)));
  await lib.ready(v4);
  const got = {};
  const news = (name, s) => new Promise((resolve) => s.once('room news', (...args) => {
    got[name] = lib.enc(args);
    resolve();
  }));
  const both = Promise.all([news('v2', v2), news('v4', v4)]);
  await ack(v2, 'join', 'r');
  await new Promise((resolve) => v4.emit('join', 'r', resolve));
  await new Promise((resolve) => v4.emit('tell room', 'r', resolve));
  await both;
  // A broadcast with acks: the server collects both answers.
  v2.on('poll', (x, cb) => cb('v2', x));
  v4.on('poll', (x, cb) => cb('v4', x));
  const [answers] = await ack(v2, 'poll room', 'r');
  lib.out({ event: 'mixed', got, answers: lib.enc(answers) });
  v2.close();
  v4.close();
  lib.out({ event: 'done' });
}

// idle keeps a connection for RALLY_IDLE_MS and counts its heartbeats.
async function idle() {
  const s = connect('/', { forceNew: true });
  await connected(s);
  let pongs = 0;
  let reason = null;
  s.io.engine.on('pong', () => pongs++);
  s.on('disconnect', (r) => { reason = r; });
  await new Promise((resolve) => setTimeout(resolve, Number(process.env.RALLY_IDLE_MS)));
  const [echo] = await ack(s, 'echo', 'still here');
  lib.out({ event: 'idle', pongs, reason, connected: s.connected, echo });
  s.close();
  lib.out({ event: 'done' });
}

if (part === 'all') all().catch(lib.fatal);
else if (part === 'idle') idle().catch(lib.fatal);
else if (part === 'mixed') mixed().catch(lib.fatal);
else lib.fatal(new Error(`unknown part ${part}`));
