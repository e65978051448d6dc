#!/usr/bin/env node
'use strict';
/**
 * `npm run soak [-- <jest args>]`: issue 13's soak with faults, on demand. Two gateways and two
 * replicas of identity, contacts and audit-log (and one journeys) run under a mixed load while
 * replicas get kill -9 and NATS restarts once; then the checks (test/soak/checks.ts) and the
 * counts. SOAK_SECONDS of load (60 here; `npm test` runs the same file for 15),
 * SOAK_KILL_EVERY_MS between kills (3000), SOAK_SEED to replay a run's choices (it prints its seed),
 * SOAK_LOG_LEVEL for the services (warn). Needs Postgres, NATS's binary and Redis; builds the apps
 * the soak spawns first. The exit code is jest's.
 */
const { ensureServices, step } = require('./lib/services');

const APPS = ['gateway', 'identity', 'contacts', 'journeys', 'audit-log'];

async function main() {
  await ensureServices();
  step('build', 'npx', ['turbo', 'run', 'build', ...APPS.map((a) => `--filter=@keyway/${a}...`), '--output-logs=errors-only']);
  const soak = step('soak', 'npx', ['jest', 'test/e2e/soak.e2e.ts', '--maxWorkers=1', ...process.argv.slice(2)], {
    env: { SOAK_SECONDS: process.env.SOAK_SECONDS ?? '60' },
    allowFailure: true,
  });
  process.exit(soak.code);
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
