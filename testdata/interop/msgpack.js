'use strict';
// The official client with socket.io-msgpack-parser, against rally or
// against Node's server (server.js's "msgpack" scenario, with
// RALLY_PARSER=msgpack). Usage: node msgpack.js <part>, part one of
//   hello   the client of rally's README, with the parser: it sends,
//           emits a string, an object and a Uint8Array, and logs what
//           the server sends back;
//   all     a transcript of acks both ways with binary nested in the
//           arguments, value types, rooms and broadcasts, namespaces and
//           connect errors, printed as one "transcript" line that Go
//           compares with what it expects and with what Node's server
//           gave.
const lib = require('./lib');
const parser = require('socket.io-msgpack-parser');

const part = process.argv[2];

// once resolves with the arguments of the next ev on socket.
function once(socket, ev) {
  return new Promise((resolve) => socket.once(ev, (...args) => resolve(args)));
}

// ack emits ev with args and resolves with every argument of the ack
// (emitWithAck keeps only the first).
function ack(socket, ev, ...args) {
  return new Promise((resolve, reject) => {
    socket.timeout(5000).emit(ev, ...args, (err, ...reply) => (err ? reject(err) : resolve(reply)));
  });
}

function connected(socket) {
  return new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
}

function hello() {
  const io = (uri) => lib.connect('hello', uri, { parser });
  console.log = (...args) => lib.out({ event: 'log', args: lib.enc(args) });
  const url = lib.url.replace(/^http/, 'ws');

  // ---- the README's client, with the parser ----
  const socket = io(url);
  socket.on('connect', () => {
    socket.send('Hello!');
    socket.emit('salutations', 'Hello!', { 'mr': 'john' }, Uint8Array.from([1, 2, 3, 4]));
  });
  socket.on('message', data => console.log(data));
  socket.on('greetings', (a, b, c) => console.log(a, b, c));
  // ---- end ----
}

async function all() {
  const t = {};
  const a = lib.connect('a', '/', { parser });
  const greeting = once(a, 'greetings');
  await connected(a);
  await lib.ready(a);
  t.greetings = lib.enc(await greeting);

  // Acks from the server, binary anywhere.
  t.echo = lib.enc(await ack(a, 'echo',
    'text', { deep: { bin: Buffer.from([1, 2]), list: [Uint8Array.from([3]), null] } },
    [Buffer.alloc(0), new Uint8Array([4, 5]).buffer], 42, -7, 1.5, 2 ** 40, -(2 ** 33), true, null, {}, []));
  t.types = lib.enc(await ack(a, 'types'));
  // Node's server gets a Date and echoes one; rally gets its ISO string.
  t.date = (await ack(a, 'echo', new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678))))
    .map((v) => (v instanceof Date ? { $date: v.toISOString() } : lib.enc(v)));
  t.failing = lib.enc(await ack(a, 'divide', 1, 0));
  t.divide = lib.enc(await ack(a, 'divide', 1, 4));

  // Acks from the client: the server asks and relays the answer.
  a.on('ask', (x, cb) => cb({ got: x, bin: Buffer.from([9, 8]) }));
  t.asked = lib.enc(await ack(a, 'ask me'));

  // Rooms and broadcasts: a and b join "r", c does not.
  const b = lib.connect('b', '/', { parser, forceNew: true });
  const c = lib.connect('c', '/', { parser, forceNew: true });
  await Promise.all([connected(b), connected(c)]);
  await Promise.all([lib.ready(b), lib.ready(c)]);
  await ack(a, 'join', 'r');
  await ack(b, 'join', 'r');
  const got = { a: [], b: [], c: [] };
  for (const [name, s] of [['a', a], ['b', b], ['c', c]]) {
    s.on('room news', (...args) => got[name].push(['room news', ...lib.enc(args)]));
    s.on('all news', (...args) => got[name].push(['all news', ...lib.enc(args)]));
  }
  await ack(a, 'to room', 'r');
  await ack(a, 'everyone');
  // The broadcasts were sent before the acks; one more round trip on
  // each socket makes sure they arrived.
  await Promise.all([ack(b, 'types'), ack(c, 'types')]);
  t.broadcasts = got;

  // Namespaces on the same connection, and refusals.
  const admin = lib.connect('admin', '/admin', { parser });
  await connected(admin);
  t.admin = lib.enc(await ack(admin, 'where', Buffer.from([1])));
  const nope = lib.connect('nope', '/nope', { parser });
  const refusal = once(nope, 'connect_error');
  t.nope = (await refusal).map((e) => ({ message: e.message, data: lib.enc(e.data) }));
  nope.close();
  const priv = lib.connect('private', '/private', { parser, auth: { token: 'wrong' } });
  t.private = (await once(priv, 'connect_error')).map((e) => ({ message: e.message, data: lib.enc(e.data) }));
  priv.close();

  lib.out({ event: 'transcript', transcript: t });
  for (const s of [a, b, c, admin]) s.close();
  lib.out({ event: 'done' });
}

if (part === 'hello') hello();
else if (part === 'all') all().catch(lib.fatal);
else lib.fatal(new Error(`unknown part ${part}`));
