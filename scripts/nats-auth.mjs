#!/usr/bin/env node
/**
 * `npm run nats:auth`: writes the NATS users and permissions generated from the subjects table
 * (packages/contracts/src/nats-permissions.ts) to infra/nats/auth.conf and, as a ConfigMap, to
 * infra/k8s/nats-auth.yaml. The npm script builds the contracts first; this reads their build.
 * `--check` writes nothing and fails when a checked-in file differs (the contracts' spec does the
 * same check in `npm test`).
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { renderNatsAuthConf, renderNatsAuthConfigMap } = require('../packages/contracts/dist/index.js');

const NATS_AUTH_FILES = { conf: 'infra/nats/auth.conf', configMap: 'infra/k8s/nats-auth.yaml' };

const conf = renderNatsAuthConf();
const files = new Map([
  [NATS_AUTH_FILES.conf, conf],
  [NATS_AUTH_FILES.configMap, renderNatsAuthConfigMap(conf)],
]);
const check = process.argv.includes('--check');
let stale = 0;
for (const [path, content] of files) {
  const full = join(ROOT, path);
  let current;
  try {
    current = readFileSync(full, 'utf8');
  } catch {
    current = undefined;
  }
  if (current === content) continue;
  if (check) {
    stale++;
    process.stderr.write(`${path} differs from the subjects table: run npm run nats:auth\n`);
  } else {
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, content);
    process.stdout.write(`wrote ${path}\n`);
  }
}
process.exit(stale > 0 ? 1 : 0);
