'use strict';
// What server.js shares with the client scripts' lib.js, without the
// client: one JSON line per event on stdout, and a "fatal" line on a crash.

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function fatal(err) {
  out({ event: 'fatal', error: String((err && err.stack) || err) });
  process.exit(1);
}
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);

module.exports = { out, fatal };
