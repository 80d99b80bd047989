'use strict';
// Used by internal/nodetest's own tests, without a server: prints "hello",
// then answers each stdin line {"op":...}:
//   echo  prints {"event":"echo","value":<value>}
//   exit  exits with code <code>
//   hang  does nothing (the process stays until it is killed)
const readline = require('node:readline');

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
out({ event: 'hello', argv: process.argv.slice(2), env: process.env.NODETEST_SELFTEST || null });
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const cmd = JSON.parse(line);
  if (cmd.op === 'echo') out({ event: 'echo', value: cmd.value });
  if (cmd.op === 'exit') process.exit(cmd.code);
  if (cmd.op === 'hang') setInterval(() => {}, 1000);
});
