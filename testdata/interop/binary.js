'use strict';
// Binary both ways: top-level and nested in objects and arrays, in events
// and in acknowledgements, including an empty buffer and one larger than
// 64 KiB.
const lib = require('./lib');
const { out, enc } = lib;

const socket = lib.connect('binary', '');

// big returns n bytes of a fixed pattern the Go test rebuilds.
function big(n) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7) % 256;
  return b;
}

const all = Buffer.alloc(256);
for (let i = 0; i < 256; i++) all[i] = i;

// Server to client: print what arrives.
socket.on('download', (...args) => out({ event: 'recv', ev: 'download', args: enc(args) }));
socket.on('echo', (...args) => out({ event: 'recv', ev: 'echo', args: enc(args) }));
// Server EmitWithAck answered with binary: the bytes reversed and a
// nested buffer.
socket.on('transform', (data, cb) => {
  out({ event: 'recv', ev: 'transform', args: enc([data]) });
  cb(Buffer.from(data).reverse(), { inner: Buffer.from('ok'), list: [Buffer.from([7]), 'z'] });
});

socket.once('connect', () => {
  const meta = {
    name: 'blob',
    nested: { data: Buffer.from('nested'), list: [Buffer.from([1]), 'x', Buffer.alloc(0)] },
  };
  const pair = [Buffer.from([0xde, 0xad]), Buffer.from([0xbe, 0xef])];
  socket.emit('upload', all, meta, pair, big(100000), (...args) => {
    out({ event: 'ack', tag: 'upload', args: enc(args) });
  });
  const echoed = [Buffer.from([1, 2, 3]), { deep: [{ x: Buffer.from([4]) }], n: 1 }, 'text'];
  out({ event: 'sent', ev: 'echo', args: enc(echoed) });
  socket.emit('echo', ...echoed);
});
