'use strict';
// Acknowledgements both ways.
//
// Client to server: emits with a callback, answered by the Go handlers'
// return values (or their error, as {"error": "..."}); printed as
// {"event":"ack","tag":...,"args":[...]}.
// Server to client: handlers answer the server's EmitWithAck through their
// callback; each request is printed as {"event":"asked","ev":...,"args":[...]}.
const lib = require('./lib');
const { out, enc } = lib;

const socket = lib.connect('acks', '');

// Answers to the server's EmitWithAck.
socket.on('ask', (question, n, cb) => {
  out({ event: 'asked', ev: 'ask', args: enc([question, n]) });
  cb(question.toUpperCase(), n * 2, { from: 'node', ok: true });
});
socket.on('refuse', (cb) => {
  out({ event: 'asked', ev: 'refuse', args: [] });
  cb({ error: 'node says no' });
});
socket.on('empty', (cb) => {
  out({ event: 'asked', ev: 'empty', args: [] });
  cb();
});

function ack(tag) {
  return (...args) => out({ event: 'ack', tag, args: enc(args) });
}

socket.once('connect', async () => {
  socket.emit('sum', 2, 40, ack('sum'));
  socket.emit('divide', 1, 4, ack('divide'));
  socket.emit('divide', 1, 0, ack('divide-by-zero'));
  socket.emit('profile', 'alice', ack('profile'));
  socket.emit('nothing', ack('nothing'));
  const res = await socket.timeout(5000).emitWithAck('sum', 20, 22);
  out({ event: 'ack', tag: 'emitWithAck', args: enc([res]) });
});
