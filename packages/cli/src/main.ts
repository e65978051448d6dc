import { run, type Io } from './cli';

/** `keyway`, the operator CLI (bin/keyway.js runs this build). */
const io: Io = {
  env: process.env,
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  stdin: async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  },
};
// package.json's version: read at run time, beside dist/.
const { version } = require('../package.json') as { version: string };

void run(process.argv.slice(2), io, version).then((code) => {
  process.exitCode = code;
});
