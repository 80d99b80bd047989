'use strict';
// The Node half of redisadapter's Redis Cluster tests: optionally a
// Socket.IO 4.8 server whose adapter is @socket.io/redis-adapter 8.3 on a
// redis@4 cluster client (createCluster) of the cluster the Go test
// started, either createShardedAdapter or the classic createAdapter, and
// any number of socket.io-client sockets, created on command.
//
// Environment: REDIS_NODES (comma-separated redis:// URLs of the cluster's
// nodes); SERVER=1 to start a server; ADAPTER ("sharded", the default, or
// "classic"); MODE (the sharded adapter's subscriptionMode); PREFIX (its
// channelPrefix, or the classic adapter's key); NAME (the server's name in
// socket data).
//
// Output, one JSON object per line:
//   {"event":"ready","port":N,"uid":uid}                     (port 0 without a server; uid: the adapter's of "/")
//   {"event":"recv","client":name,"ev":ev,"args":[...]}      every event a client gets
//   {"event":"disconnect","client":name,"reason":reason}
//   {"event":"sse","ev":ev,"args":[...]}                     server-side events heard here
//   {"event":"redis-error","error":msg}                      what the Redis clients report
//   {"event":"done","id":id,...} / {"event":"failed","id":id,"error":msg}
// Binary values print as {"$buffer": hex}; Go sends them the same way.

const http = require('node:http');
const readline = require('node:readline');
const { Server } = require('socket.io');
const { io: connect } = require('socket.io-client');
const { createCluster } = require('redis');
const { createAdapter, createShardedAdapter } = require('@socket.io/redis-adapter');

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
  if (ArrayBuffer.isView(v)) return { $buffer: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') };
  if (v instanceof ArrayBuffer) return { $buffer: Buffer.from(v).toString('hex') };
  if (Array.isArray(v)) return v.map(enc);
  if (typeof v === 'function') return { $function: true };
  if (v === undefined) return { $undefined: true };
  if (v instanceof Set) return [...v].map(enc);
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

async function startServer() {
  const rootNodes = process.env.REDIS_NODES.split(',').map((url) => ({ url }));
  const pub = createCluster({ rootNodes });
  const sub = pub.duplicate();
  for (const c of [pub, sub]) c.on('error', (err) => out({ event: 'redis-error', error: String(err) }));
  await Promise.all([pub.connect(), sub.connect()]);
  const prefix = process.env.PREFIX || 'socket.io';
  const adapter =
    process.env.ADAPTER === 'classic'
      ? createAdapter(pub, sub, { key: prefix, requestsTimeout: 3000 })
      : createShardedAdapter(pub, sub, { channelPrefix: prefix, subscriptionMode: process.env.MODE || 'dynamic' });
  const httpServer = http.createServer();
  const io = new Server(httpServer, { adapter });
  const name = process.env.NAME || 'node';
  io.on('connection', (socket) => {
    socket.data = { server: name, user: socket.handshake.auth.user };
    socket.on('join', (room, cb) => {
      socket.join(room);
      if (typeof cb === 'function') cb();
    });
    socket.on('leave', (room, cb) => {
      socket.leave(room);
      if (typeof cb === 'function') cb();
    });
  });
  io.on('ping-srv', (arg, cb) => {
    out({ event: 'sse', ev: 'ping-srv', args: enc([arg]) });
    if (typeof cb === 'function') cb('pong from node: ' + arg);
  });
  io.on('note', (...args) => out({ event: 'sse', ev: 'note', args: enc(args) }));
  await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  return { io, clients: [pub, sub], port: httpServer.address().port };
}

async function main() {
  const server = process.env.SERVER === '1' ? await startServer() : null;
  const io = server && server.io;
  const clients = {};
  let ticker = null;

  function select(op, base) {
    let o = base;
    if (op.rooms && op.rooms.length) o = o.to(op.rooms);
    if (op.except && op.except.length) o = o.except(op.except);
    return o;
  }

  const ops = {
    connect: (op) =>
      new Promise((resolve, reject) => {
        const socket = connect(op.url, { auth: op.auth || {}, forceNew: true });
        clients[op.client] = socket;
        socket.onAny((ev, ...args) => {
          const printable = typeof args[args.length - 1] === 'function' ? args.slice(0, -1) : args;
          out({ event: 'recv', client: op.client, ev, args: enc(printable) });
        });
        socket.on('question', (q, cb) => cb(`${op.client}: ${q}`));
        socket.on('disconnect', (reason) => out({ event: 'disconnect', client: op.client, reason }));
        socket.once('connect', () => resolve({ sid: socket.id }));
        socket.once('connect_error', reject);
      }),
    clientJoin: (op) =>
      new Promise((resolve) => {
        clients[op.client].emit('join', op.room, () => resolve({}));
      }),
    clientLeave: (op) =>
      new Promise((resolve) => {
        clients[op.client].emit('leave', op.room, () => resolve({}));
      }),
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
      return { sockets: sockets.map((s) => ({ id: s.id, rooms: [...s.rooms], data: enc(s.data) })) };
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
    serverCount: async () => ({ count: await io.of('/').adapter.serverCount() }),
    // A broadcast every op.every ms to everyone: ["tick", NAME, n].
    startTicks: (op) => {
      let n = 0;
      const name = process.env.NAME || 'node';
      ticker = setInterval(() => io.emit('tick', name, n++), op.every || 10);
      return {};
    },
    stopTicks: () => {
      clearInterval(ticker);
      return {};
    },
  };

  async function shutdown() {
    clearInterval(ticker);
    for (const c of Object.values(clients)) c.close();
    if (server) {
      server.io.close();
      await Promise.allSettled(server.clients.map((c) => c.disconnect()));
    }
    process.exit(0);
  }
  ops.exit = shutdown;

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
  rl.on('close', shutdown);

  out({ event: 'ready', port: server ? server.port : 0, uid: server ? io.of('/').adapter.uid : '' });
}

main().catch(fatal);
