'use strict';
// 1,000 events in order, both ways. The client emits seq(i, "m<i>") for
// i = 0..999 then asks seqdone for an ack; it records the server's seq
// events and prints them all when the server's seqdone arrives.
const lib = require('./lib');
const { out } = lib;

const count = Number(process.argv[2] || 1000);
const socket = lib.connect('order', '');

const received = [];
const mismatched = [];
socket.on('seq', (i, text) => {
  received.push(i);
  if (text !== `m${i}`) mismatched.push({ i, text });
});
socket.on('seqdone', (n) => {
  out({ event: 'received', n, seq: received, mismatched });
});

socket.once('connect', () => {
  for (let i = 0; i < count; i++) socket.emit('seq', i, `m${i}`);
  socket.emit('seqdone', (...args) => out({ event: 'ack', tag: 'seqdone', args }));
});
