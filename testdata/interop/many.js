'use strict';
// Many clients in one process: argv[2] sockets (default 200), each with its
// own connection (forceNew). Prints "all-ready" once every socket is
// connected (and upgraded in the default mode), then every event any
// socket receives as {"event":"recv","name":"c<i>","ev":...,"args":[...]}.
const lib = require('./lib');
const { out, enc } = lib;

const count = Number(process.argv[2] || 200);
const waits = [];
for (let i = 0; i < count; i++) {
  const name = `c${i}`;
  const socket = lib.connect(name, '', { forceNew: true });
  socket.onAny((ev, ...args) => out({ event: 'recv', name, ev, args: enc(args) }));
  waits.push(lib.ready(socket));
}
Promise.all(waits).then(() => out({ event: 'all-ready', count }));
