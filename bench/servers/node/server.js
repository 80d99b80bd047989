// The official Node socket.io peer of the benchmark harness, with the
// contract's handlers (see bench/README.md). Run with --expose-gc so that
// POST /bench/gc can collect before memory is read. With -recovery it turns
// connectionStateRecovery on, with its defaults; with -parser msgpack it uses
// socket.io-msgpack-parser; with -redis URL it shares broadcasts with the other
// servers through @socket.io/redis-adapter's classic createAdapter (8.3) on
// two node-redis 4.7 clients, connected before it listens.
'use strict';
const http = require('node:http');
const { performance } = require('node:perf_hooks');
const { Server } = require('socket.io');

let addr = '127.0.0.1:3000';
let recovery = false;
let parser = 'default';
let redisURL = '';
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '-addr' || a === '--addr') addr = process.argv[++i];
  else if (a === '-recovery' || a === '--recovery') recovery = true;
  else if (a === '-parser' || a === '--parser') parser = process.argv[++i];
  else if (a === '-redis' || a === '--redis') redisURL = process.argv[++i];
  else {
    console.error(`node: unknown argument ${a}`);
    process.exit(2);
  }
}
if (parser !== 'default' && parser !== 'msgpack') {
  console.error(`node: unknown -parser ${parser}`);
  process.exit(2);
}
const sep = addr.lastIndexOf(':');
const host = addr.slice(0, sep);
const port = Number(addr.slice(sep + 1));
if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host)) {
  console.error(`node: -addr must be a loopback address, got ${addr}`);
  process.exit(2);
}

// Wall-clock microseconds, the same clock the Go servers stamp ticks with.
const nowMicros = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
const pads = new Map();
const pad = (n) => {
  n = n | 0;
  if (!pads.has(n)) pads.set(n, 'x'.repeat(n));
  return pads.get(n);
};

let clients = 0;
const version = require('socket.io/package.json').version;
const srv = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url.startsWith('/bench/stats')) {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({
      server: 'node-socket.io', version, pid: process.pid, clients,
      rss_bytes: process.memoryUsage.rss(), runtime: `node ${process.version}`, recovery, parser,
      redis: redisURL !== '',
    }));
    return;
  }
  if (req.method === 'POST' && req.url === '/bench/gc') {
    if (global.gc) global.gc();
    res.writeHead(204);
    res.end();
    return;
  }
  res.writeHead(404);
  res.end();
});

const opts = { serveClient: false };
if (recovery) opts.connectionStateRecovery = {};
if (parser === 'msgpack') opts.parser = require('socket.io-msgpack-parser');
const io = new Server(srv, opts);
io.on('connection', (socket) => {
  clients++;
  socket.on('disconnect', () => { clients--; });
  socket.on('echo', (v, ack) => { if (typeof ack === 'function') ack(v); });
  socket.on('blast', (req) => {
    const p = pad(req && req.pad);
    const n = (req && req.n) | 0;
    const from = (req && req.from) | 0;
    for (let i = 0; i < n; i++) io.emit('tick', { t: nowMicros(), i: from + i, p });
  });
});

// useRedis connects the adapter's publishing and subscribing clients and
// installs the adapter; the server listens only once both are connected.
async function useRedis() {
  const { createClient } = require('redis');
  const { createAdapter } = require('@socket.io/redis-adapter');
  const pub = createClient({ url: redisURL });
  const sub = pub.duplicate();
  for (const c of [pub, sub]) c.on('error', (err) => console.error(`node: redis: ${err.message}`));
  await Promise.all([pub.connect(), sub.connect()]);
  io.adapter(createAdapter(pub, sub));
}

(redisURL ? useRedis() : Promise.resolve()).then(() => {
  srv.listen(port, host, () => {
    console.error(`node-socket.io ${version} listening on ${addr} (node ${process.version})${redisURL ? ', Redis adapter on ' + redisURL : ''}`);
  });
}, (err) => {
  console.error(`node: connecting to Redis at ${redisURL}: ${err.message}`);
  process.exit(1);
});
