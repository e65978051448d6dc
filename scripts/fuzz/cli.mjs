#!/usr/bin/env node
/**
 * `npm run fuzz [-- options]`: an OpenAPI-driven fuzz of a RUNNING platform (issue 8). Reads the
 * served /docs/openapi.json, sends valid and invalid requests for every operation plus stateful
 * sequences, and prints what broke the document's promises. Exit code 1 when anything did.
 *
 *   --url <base>          public base URL        (KEYWAY_URL, default http://127.0.0.1:3000)
 *   --admin-url <base>    admin listener         (KEYWAY_ADMIN_URL, default http://127.0.0.1:3100)
 *   --token <token>       operator token         (KEYWAY_ADMIN_TOKEN, else .keyway/admin-token)
 *   --seed <n>            the run's seed         (FUZZ_SEED, default: random, printed)
 *   --requests <n>        request budget         (FUZZ_REQUESTS, default 2000; coverage and probes always run)
 *   --concurrency <n>     sequences in flight    (default 4)
 *   --timeout <ms>        per request            (default 30000)
 *   --json <file>         the full result, every failure with its request and answer
 *   --trace               with --json: one line per request sent (operation, case, status, sizes, ms)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatSummary } from './report.mjs';
import { Fuzzer } from './run.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function operatorToken(given) {
  if (given) return given;
  if (process.env.KEYWAY_ADMIN_TOKEN) return process.env.KEYWAY_ADMIN_TOKEN;
  try {
    return readFileSync(join(ROOT, '.keyway', 'admin-token'), 'utf8').trim();
  } catch {
    return undefined;
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      'admin-url': { type: 'string' },
      token: { type: 'string' },
      seed: { type: 'string' },
      requests: { type: 'string' },
      concurrency: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'string' },
      trace: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0].replace(/^#!.*\n\/\*\*\n/, '').replace(/^ \* ?/gm, '') + '\n');
    return 0;
  }
  const baseUrl = values.url ?? process.env.KEYWAY_URL ?? 'http://127.0.0.1:3000';
  const adminToken = operatorToken(values.token);
  if (!adminToken) {
    process.stderr.write('No operator token: pass --token, set KEYWAY_ADMIN_TOKEN, or run `npm start` once (it writes .keyway/admin-token).\n');
    return 2;
  }
  const int = (v, fallback) => (v === undefined ? fallback : Number.parseInt(v, 10));
  const seed = int(values.seed ?? process.env.FUZZ_SEED, Math.floor(Math.random() * 2 ** 31));
  const fuzzer = new Fuzzer({
    baseUrl,
    adminUrl: values['admin-url'] ?? process.env.KEYWAY_ADMIN_URL ?? 'http://127.0.0.1:3100',
    adminToken,
    seed,
    requests: int(values.requests ?? process.env.FUZZ_REQUESTS, 2000),
    concurrency: int(values.concurrency, 4),
    timeoutMs: int(values.timeout, 30_000),
    trace: values.trace === true,
  });
  const result = await fuzzer.run();
  if (values.json) writeFileSync(values.json, JSON.stringify(result, null, 2));
  process.stdout.write(`${formatSummary(result)}\n`);
  return result.failures.count === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`fuzz: ${err?.stack ?? err}\n`);
    process.exit(2);
  },
);
