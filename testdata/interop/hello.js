'use strict';
// The client from the issue, verbatim but for the URL: it sends "Hello!",
// emits "salutations" with a string, an object and binary, and logs the
// "message" and "greetings" events it receives.
//
// Two shims keep the snippet unchanged: io() applies the transport mode of
// RALLY_TRANSPORT (and reports upgrades), and console.log prints each call
// as a JSON line {"event":"log","args":[...]} with binary as {"$buffer":hex}.
const lib = require('./lib');

const io = (uri) => lib.connect('hello', uri);
console.log = (...args) => lib.out({ event: 'log', args: lib.enc(args) });

// The server's address as a ws:// URL, like the snippet's 'ws://localhost:3000'.
const url = lib.url.replace(/^http/, 'ws');

// ---- verbatim from the issue, URL substituted ----
const socket = io(url);
socket.on('connect', () => {
  socket.send('Hello!');
  socket.emit('salutations', 'Hello!', { 'mr': 'john' }, Uint8Array.from([1, 2, 3, 4]));
});
socket.on('message', data => console.log(data));
socket.on('greetings', (a, b, c) => console.log(a, b, c));
// ---- end of the snippet ----
