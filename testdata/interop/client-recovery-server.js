'use strict';
// The official Socket.IO server with connection state recovery on, for the
// Go client's recovery tests (client/recovery_test.go). The Go test drives
// it through stdin, one JSON command a line, and reads what happened from
// stdout, one JSON event a line.
//
// Environment:
//   RALLY_MAX_DISCONNECTION_MS  connectionStateRecovery.maxDisconnectionDuration (default 2 minutes)
//
// Commands:
//   {"op":"down"}                       refuse new Engine.IO handshakes
//   {"op":"up"}                         accept them again, and TCP connections
//   {"op":"cut","nsp":"/","id":...}     socket.conn.close() on that socket's connection
//   {"op":"destroy"}                    destroy every TCP connection, and refuse new ones until "up"
//   {"op":"broadcast","nsp":"/","ev":"tick","args":[1]}
//
// Events: listening {url}, connection {nsp, id, recovered, auth}, disconnect {nsp,
// id, reason}, expired {nsp, id} (maxDisconnectionDuration after a
// disconnect, give or take 200 ms more), broadcasted {nsp, ev, args},
// done {op}.
const { createServer } = require('node:http');
const readline = require('node:readline');
const { Server } = require('socket.io');
const lib = require('./lib-server');

const maxDisconnectionDuration = Number(process.env.RALLY_MAX_DISCONNECTION_MS) || 2 * 60 * 1000;
let down = false;
let tcpDown = false;
const tcp = new Set();

const httpServer = createServer();
httpServer.on('connection', (conn) => {
  if (tcpDown) {
    conn.destroy();
    return;
  }
  tcp.add(conn);
  conn.on('close', () => tcp.delete(conn));
});

const io = new Server(httpServer, {
  // Short heartbeats, so that a connection cut under the server is noticed
  // (and its session kept for recovery) soon.
  pingInterval: 1000,
  pingTimeout: 1000,
  allowRequest: (req, cb) => cb(down ? 'down for the test' : null, !down),
  connectionStateRecovery: { maxDisconnectionDuration },
});

for (const name of ['/', '/chat']) {
  io.of(name).on('connection', (socket) => {
    lib.out({ event: 'connection', nsp: name, id: socket.id, recovered: socket.recovered, auth: socket.handshake.auth });
    socket.on('sync', (ack) => ack(socket.id));
    socket.on('disconnect', (reason) => {
      lib.out({ event: 'disconnect', nsp: name, id: socket.id, reason });
      setTimeout(() => lib.out({ event: 'expired', nsp: name, id: socket.id }), maxDisconnectionDuration + 200);
    });
  });
}

const commands = {
  down() {
    down = true;
  },
  up() {
    down = false;
    tcpDown = false;
  },
  cut({ nsp, id }) {
    const socket = io.of(nsp).sockets.get(id);
    if (!socket) throw new Error(`no socket ${id} on ${nsp}`);
    socket.conn.close();
  },
  destroy() {
    tcpDown = true;
    for (const conn of tcp) conn.destroy();
  },
  broadcast({ nsp, ev, args }) {
    io.of(nsp).emit(ev, ...args);
    lib.out({ event: 'broadcasted', nsp, ev, args });
  },
};

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = JSON.parse(line);
  if (!commands[cmd.op]) throw new Error(`unknown op ${cmd.op}`);
  commands[cmd.op](cmd);
  lib.out({ event: 'done', op: cmd.op });
});
process.stdin.on('end', () => process.exit(0));

httpServer.listen(0, '127.0.0.1', () => {
  lib.out({ event: 'listening', url: `http://127.0.0.1:${httpServer.address().port}` });
});
