'use strict';
// The official Socket.IO server, for differential tests: the Go test runs
// the same client script against it and against rally, and compares what
// the client saw. The handlers of each scenario mirror the Go ones.
//
// Usage: node server.js <scenario>. Prints {"event":"listening","url":...}
// once it listens on a free loopback port. RALLY_TRANSPORT=deflate turns
// permessage-deflate on, as the Go side does with Options.Compression.
const { createServer } = require('node:http');
const { Server } = require('socket.io');
const lib = require('./lib-server');

const scenarios = {
  // Acknowledgements: as many arguments as came, none, later, never, on
  // error, and whether one was asked for.
  acks(io) {
    io.on('connection', (socket) => {
      socket.on('echo', (...args) => {
        const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
        if (ack) ack(...args);
      });
      socket.on('sleep', (ms, ack) => {
        setTimeout(() => ack(ms), ms);
      });
      socket.on('quiet', () => {});
      socket.on('requested', (ack) => {
        const asked = typeof ack === 'function';
        socket.emit('requested', asked);
        if (asked) ack();
      });
      socket.on('failing', (ack) => {
        ack({ error: 'nope' });
      });
    });
  },

  // Packet middleware that refuses and rewrites, catch-all listeners in
  // order, and a fallback for events no listener takes.
  listeners(io) {
    io.on('connection', (socket) => {
      const log = [];
      socket.use((packet, next) => {
        if (packet[0] === 'forbidden') return next(new Error('not allowed'));
        if (packet[0] === 'shout') packet[1] = String(packet[1]).toUpperCase();
        next();
      });
      // The fallback of events no listener takes, after the other
      // middleware, as rally's OnUnhandled.
      socket.use((packet, next) => {
        const ack = packet[packet.length - 1];
        if (socket.listeners(packet[0]).length > 0) return next();
        if (typeof ack === 'function') ack(`fallback ${packet[0]}`);
      });
      socket.on('error', () => {}); // what middleware refused
      socket.onAny((event) => log.push(`any:${event}`));
      socket.prependAny((event) => log.push(`first:${event}`));
      socket.on('shout', (text, ack) => {
        log.push('handler:shout');
        ack(text);
      });
      socket.on('report', (ack) => ack(log));
    });
  },
  // Listeners of what is sent: emits to the socket and broadcasts that
  // reach it, not acknowledgements.
  outgoing(io) {
    io.on('connection', (socket) => {
      const log = [];
      socket.onAnyOutgoing((event, ...args) => log.push([`out:${event}`, ...args]));
      socket.prependAnyOutgoing((event) => log.push([`first:${event}`]));
      socket.on('hello', (ack) => {
        socket.emit('one', 1);
        io.emit('two', 2);
        socket.broadcast.emit('three', 3); // not to this socket
        ack('done');
      });
      socket.on('report', (ack) => ack(log));
    });
  },
  // A relay sends back what came, as it came.
  relay(io) {
    io.on('connection', (socket) => {
      socket.on('relay', (...args) => {
        const ack = args.pop();
        ack(...args);
      });
    });
  },
  // Dynamic namespaces: a regular expression and a function, middleware
  // and handlers on the parent, a broadcast on the parent.
  dynamic(io) {
    const tenants = io.of(/^\/tenant-\d+$/);
    tenants.use((socket, next) => {
      if (socket.handshake.auth.token === 'bad') return next(new Error('refused'));
      next();
    });
    tenants.on('connection', (socket) => {
      socket.on('whoami', (ack) => ack(socket.nsp.name));
      socket.on('shout', (text) => tenants.emit('heard', socket.nsp.name, text));
    });
    const byFunction = io.of((name, auth, next) => next(null, name.startsWith('/fn-') && auth.allow === true));
    byFunction.on('connection', (socket) => {
      socket.on('whoami', (ack) => ack(socket.nsp.name));
    });
  },
  // Connection state recovery: the handlers of recovery_interop_test.go.
  recovery(io) {
    let middlewareRuns = 0;
    io.use((socket, next) => {
      middlewareRuns++;
      next();
    });
    io.on('connection', (socket) => {
      socket.on('join', (room, ack) => {
        socket.join(room);
        ack(null);
      });
      socket.on('set data', (v, ack) => {
        socket.data = v;
        ack(null);
      });
      socket.on('hello me', (n, ack) => {
        socket.emit('private', n);
        ack(null);
      });
      socket.on('send', (spec, ack) => {
        let op = io.to(spec.to || []).except(spec.except || []);
        if (spec.volatile) op = op.volatile;
        op.emit(spec.ev, ...spec.args);
        ack(null);
      });
      socket.on('whoami', (ack) => {
        const rooms = [...socket.rooms].map((r) => (r === socket.id ? '$self' : r)).sort();
        ack({ recovered: socket.recovered, data: socket.data === undefined ? null : socket.data, rooms, middlewareRuns });
      });
      socket.on('disconnect', (reason) => io.emit('gone', reason));
      socket.emit('hi', socket.recovered);
    });
  },
  // The server closes a client's connection without DISCONNECT.
  closeconn(io) {
    io.on('connection', (socket) => {
      socket.on('close me', () => socket.conn.close());
    });
  },
  // What msgpack.js drives, with RALLY_PARSER=msgpack: the handlers of
  // msgpackHandlers in interop_msgpack_test.go.
  msgpack(io) {
    io.on('connection', (socket) => {
      socket.emit('greetings', 'Hey!', { ms: 'jane' }, Buffer.from([4, 3, 2, 1]));
      socket.on('message', (data) => socket.send(data));
      socket.on('echo', (...args) => args.pop()(...args));
      socket.on('types', (cb) => cb(1, -(2 ** 40), 0.25, [1, 'x'], {}, null));
      socket.on('divide', (a, b, cb) => (b === 0 ? cb({ error: 'division by zero' }) : cb(a / b)));
      socket.on('ask me', async (cb) => cb(await socket.timeout(5000).emitWithAck('ask', Buffer.from([5, 6]))));
      socket.on('join', (room, cb) => {
        socket.join(room);
        cb();
      });
      socket.on('to room', (room, cb) => {
        socket.to(room).emit('room news', 'hi', Buffer.from([1]));
        cb();
      });
      socket.on('everyone', (cb) => {
        io.emit('all news', { bin: Buffer.from([2]) });
        cb();
      });
    });
    io.of('/admin').on('connection', (socket) => {
      socket.on('where', (b, cb) => cb(socket.nsp.name, b));
    });
    io.of('/private').use((socket, next) => {
      const err = new Error('not authorized');
      err.data = { code: 42 };
      next(err);
    });
  },
  // What v2.js drives, with RALLY_EIO3=1: the handlers of v2Handlers in
  // interop_v2_test.go.
  eio3(io) {
    let last = '';
    io.on('connection', (socket) => {
      socket.emit('greetings', 'Hey!', { ms: 'jane' }, Buffer.from([4, 3, 2, 1]));
      socket.on('message', (data) => socket.send(data));
      socket.on('salutations', () => {});
      socket.on('whoami', (cb) => cb({ id: socket.id, query: { name: socket.handshake.query.name || '' } }));
      socket.on('echo', (...args) => args.pop()(...args));
      socket.on('divide', (a, b, cb) => (b === 0 ? cb({ error: 'division by zero' }) : cb(a / b)));
      socket.on('ask me', async (cb) => cb(await socket.timeout(5000).emitWithAck('ask', Buffer.from([5, 6]))));
      socket.on('join', (room, cb) => {
        socket.join(room);
        cb();
      });
      socket.on('to room', (room, cb) => {
        socket.to(room).emit('room news', 'hi', Buffer.from([1]));
        cb();
      });
      socket.on('everyone', (cb) => {
        io.emit('all news', { bin: Buffer.from([2]) });
        cb();
      });
      socket.on('tell room', (room, cb) => {
        io.to(room).emit('room news', 'hi', Buffer.from([1]), { bin: Buffer.from([2]) });
        cb();
      });
      socket.on('poll room', async (room, cb) => {
        const answers = await io.to(room).timeout(5000).emitWithAck('poll', Buffer.from([7]));
        cb(answers.sort((a, b) => String(a).localeCompare(String(b))));
      });
      socket.on('last reason', (cb) => cb(last));
    });
    const admin = io.of('/admin');
    admin.use((socket, next) => next(socket.handshake.auth.token === 'secret' ? undefined : new Error('bad token')));
    admin.on('connection', (socket) => {
      socket.on('where', (b, cb) => cb({ nsp: socket.nsp.name, token: socket.handshake.auth.token, bin: b, id: socket.id }));
      socket.on('kick me', () => socket.disconnect());
      socket.on('disconnect', (reason) => {
        last = reason;
      });
    });
    io.of('/private').use((socket, next) => {
      const err = new Error('not authorized');
      err.data = { code: 42 };
      next(err);
    });
    io.of('/denied').use((socket, next) => next(new Error('go away')));
  },
};

const name = process.argv[2];
if (!scenarios[name]) lib.fatal(new Error(`unknown scenario ${name}`));
const httpServer = createServer();
const io = new Server(httpServer, {
  perMessageDeflate: process.env.RALLY_TRANSPORT === 'deflate' ? { threshold: 0 } : false,
  parser: process.env.RALLY_PARSER === 'msgpack' ? require('socket.io-msgpack-parser') : undefined,
  allowEIO3: process.env.RALLY_EIO3 === '1',
  connectionStateRecovery: process.env.RALLY_RECOVERY_MS
    ? { maxDisconnectionDuration: Number(process.env.RALLY_RECOVERY_MS) }
    : undefined,
});
scenarios[name](io);
httpServer.listen(0, '127.0.0.1', () => {
  lib.out({ event: 'listening', url: `http://127.0.0.1:${httpServer.address().port}` });
});
process.stdin.on('data', () => {});
process.stdin.on('end', () => process.exit(0));
