'use strict';
// The Node half of redisadapter's mixed-cluster tests: a Socket.IO 4.8
// server with @socket.io/redis-adapter 8.3 on the Redis the Go test
// started, an @socket.io/redis-emitter 5.1, and two socket.io-client
// sockets, one connected to this Node server ("nodeOnNode") and one to the
// rally hub ("nodeOnRally").
//
// Environment: REDIS_URL (redis://127.0.0.1:port), RALLY_URL (the rally
// hub's base URL), REQUESTS_TIMEOUT (ms).
//
// Output, one JSON object per line:
//   {"event":"ready","port":N,"ids":{"nodeOnNode":sid,"nodeOnRally":sid}}
//   {"event":"recv","client":name,"ev":ev,"args":[...]}      every event a client gets
//   {"event":"disconnect","client":name,"reason":reason}
//   {"event":"sse","ev":ev,"args":[...]}                      server-side events heard here
//   {"event":"done","id":id,...} / {"event":"failed","id":id,"error":msg}   answers to commands
//   {"event":"progress","step":...,"ms":N}                    startup steps, for failure reports
// Binary values print as {"$buffer": hex}; Go sends them the same way.
//
// Input, one JSON command per line: {"id":..., "op":..., ...}; see ops below.

const http = require('node:http');
const readline = require('node:readline');
const { Server } = require('socket.io');
const { io: connect } = require('socket.io-client');
const { createClient } = require('redis');
const { createAdapter } = require('@socket.io/redis-adapter');
const { Emitter } = require('@socket.io/redis-emitter');

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function fatal(err) {
  out({ event: 'fatal', error: String((err && err.stack) || err) });
  process.exit(1);
}
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);

function enc(v) {
  if (Buffer.isBuffer(v)) return { $buffer: v.toString('hex') };
  if (ArrayBuffer.isView(v)) return { $bytes: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') };
  if (v instanceof ArrayBuffer) return { $bytes: Buffer.from(v).toString('hex') };
  if (Array.isArray(v)) return v.map(enc);
  if (typeof v === 'function') return { $function: true };
  if (v === undefined) return { $undefined: true };
  if (v instanceof Set) return [...v].map(enc);
  if (v instanceof Date) return v.toISOString();
  if (v !== null && typeof v === 'object') {
    const o = {};
    for (const k of Object.keys(v)) o[k] = enc(v[k]);
    return o;
  }
  return v;
}

function dec(v) {
  if (Array.isArray(v)) return v.map(dec);
  if (v !== null && typeof v === 'object') {
    if (typeof v.$buffer === 'string' && Object.keys(v).length === 1) return Buffer.from(v.$buffer, 'hex');
    const o = {};
    for (const k of Object.keys(v)) o[k] = dec(v[k]);
    return o;
  }
  return v;
}

const t0 = Date.now();
function progress(step) {
  out({ event: 'progress', step, ms: Date.now() - t0 });
}

async function main() {
  progress('started');
  const redisUrl = process.env.REDIS_URL;
  const rallyUrl = process.env.RALLY_URL;
  if (!redisUrl || !rallyUrl) throw new Error('REDIS_URL and RALLY_URL must be set');

  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  const emitterClient = pub.duplicate();
  for (const c of [pub, sub, emitterClient]) c.on('error', (err) => out({ event: 'redis-error', error: String(err) }));
  await Promise.all([pub.connect(), sub.connect(), emitterClient.connect()]);
  progress('redis connected');

  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    adapter: createAdapter(pub, sub, { requestsTimeout: Number(process.env.REQUESTS_TIMEOUT || 2000) }),
  });
  io.on('connection', (socket) => {
    socket.data = { server: 'node', user: socket.handshake.auth.user };
    socket.on('join', (room, cb) => {
      socket.join(room);
      if (typeof cb === 'function') cb();
    });
    socket.on('rooms', (cb) => cb([...socket.rooms]));
  });
  // Server-side events from other servers (rally, or emitters).
  io.on('ping-srv', (arg, cb) => {
    out({ event: 'sse', ev: 'ping-srv', args: enc([arg]) });
    if (typeof cb === 'function') cb('pong from node: ' + arg);
  });
  io.on('note', (...args) => out({ event: 'sse', ev: 'note', args: enc(args) }));

  await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const port = httpServer.address().port;
  progress('listening');
  const emitter = new Emitter(emitterClient);

  // The two Node clients.
  const clients = {};
  function startClient(name, url) {
    const socket = connect(url, { auth: { user: name }, reconnection: false });
    socket.onAny((ev, ...args) => {
      const printable = typeof args[args.length - 1] === 'function' ? args.slice(0, -1) : args;
      out({ event: 'recv', client: name, ev, args: enc(printable) });
    });
    socket.on('question', (q, cb) => cb(`${name}: ${q}`));
    socket.on('disconnect', (reason) => out({ event: 'disconnect', client: name, reason }));
    clients[name] = socket;
    return new Promise((resolve, reject) => {
      socket.once('connect', () => {
        progress(name + ' connected');
        resolve();
      });
      socket.once('connect_error', reject);
    });
  }
  await Promise.all([startClient('nodeOnNode', `http://127.0.0.1:${port}`), startClient('nodeOnRally', rallyUrl)]);

  function select(op, base) {
    let o = base;
    if (op.rooms && op.rooms.length) o = o.to(op.rooms);
    if (op.except && op.except.length) o = o.except(op.except);
    return o;
  }

  const ops = {
    emit: (op) => {
      select(op, io).emit(op.ev, ...dec(op.args || []));
      return {};
    },
    emitAck: (op) =>
      new Promise((resolve) => {
        select(op, io)
          .timeout(op.timeout || 3000)
          .emit(op.ev, ...dec(op.args || []), (err, responses) =>
            resolve({ error: err ? err.message : null, responses: enc(responses) }),
          );
      }),
    fetch: async (op) => {
      const sockets = await select(op, io).fetchSockets();
      return {
        sockets: sockets.map((s) => ({ id: s.id, rooms: [...s.rooms], data: enc(s.data), handshake: enc(s.handshake) })),
      };
    },
    sse: (op) => {
      io.serverSideEmit(op.ev, ...dec(op.args || []));
      return {};
    },
    sseAck: async (op) => {
      try {
        const responses = await io.serverSideEmitWithAck(op.ev, ...dec(op.args || []));
        return { responses: enc(responses) };
      } catch (err) {
        return { error: err.message, responses: enc(err.responses) };
      }
    },
    join: (op) => {
      select(op, io).socketsJoin(op.join);
      return {};
    },
    leave: (op) => {
      select(op, io).socketsLeave(op.leave);
      return {};
    },
    disconnect: (op) => {
      select(op, io).disconnectSockets(!!op.close);
      return {};
    },
    allRooms: async () => ({ rooms: [...(await io.of('/').adapter.allRooms())] }),
    serverCount: async () => ({ count: await io.of('/').adapter.serverCount() }),
    clientJoin: (op) =>
      new Promise((resolve) => {
        clients[op.client].emit('join', op.room, () => resolve({}));
      }),
    clientRooms: (op) =>
      new Promise((resolve) => {
        clients[op.client].emit('rooms', (rooms) => resolve({ rooms }));
      }),
    emitterEmit: (op) => {
      let e = op.nsp ? emitter.of(op.nsp) : emitter;
      e = select(op, e);
      if (op.volatile) e = e.volatile;
      e.emit(op.ev, ...dec(op.args || []));
      return {};
    },
    emitterJoin: (op) => {
      select(op, emitter).socketsJoin(op.join);
      return {};
    },
    emitterLeave: (op) => {
      select(op, emitter).socketsLeave(op.leave);
      return {};
    },
    emitterDisconnect: (op) => {
      select(op, emitter).disconnectSockets(!!op.close);
      return {};
    },
    emitterSse: (op) => {
      emitter.serverSideEmit(op.ev, ...dec(op.args || []));
      return {};
    },
  };

  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', async (line) => {
    const op = JSON.parse(line);
    try {
      const fn = ops[op.op];
      if (!fn) throw new Error(`unknown op ${op.op}`);
      const res = await fn(op);
      out({ event: 'done', id: op.id, ...res });
    } catch (err) {
      out({ event: 'failed', id: op.id, error: String((err && err.stack) || err) });
    }
  });
  rl.on('close', async () => {
    for (const c of Object.values(clients)) c.close();
    io.close();
    await Promise.allSettled([pub.quit(), sub.quit(), emitterClient.quit()]);
    process.exit(0);
  });

  out({ event: 'ready', port, ids: { nodeOnNode: clients.nodeOnNode.id, nodeOnRally: clients.nodeOnRally.id } });
}

main().catch(fatal);
