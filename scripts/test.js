#!/usr/bin/env node
'use strict';
/**
 * `npm test [-- <jest args>]`: install if needed, make sure Postgres, NATS and Redis answer, build
 * (the foundation tests spawn the built services), type-check, lint, then jest. Each step prints
 * its wall time; the exit code is jest's (or the first failing step's).
 */
const { log, step, seconds, installDependencies, ensureServices } = require('./lib/services');

async function main() {
  const started = Date.now();
  const times = [];
  const summary = () => `wall time: ${times.map(([n, t]) => `${n} ${seconds(t)}`).join(', ')}; total ${seconds(Date.now() - started)}`;
  const timed = (name, cmd, args) => {
    const r = step(name, cmd, args, { allowFailure: true });
    times.push([name, r.took]);
    if (r.code !== 0) {
      log(summary());
      process.exit(r.code);
    }
    return r;
  };

  const installStart = Date.now();
  installDependencies();
  times.push(['install', Date.now() - installStart]);

  const servicesStart = Date.now();
  await ensureServices();
  times.push(['services', Date.now() - servicesStart]);

  timed('build', 'npx', ['turbo', 'run', 'build', '--output-logs=new-only']);
  timed('typecheck', 'npx', ['tsc', '-p', 'tsconfig.json']);
  timed('lint', 'npx', ['eslint', '.', '--max-warnings', '0']);

  const extra = process.argv.slice(2);
  const ci = process.env.CI === 'true' || process.env.CI === '1';
  const jestArgs = [...(ci && !extra.includes('--ci') ? ['--ci'] : []), ...extra];
  const jest = step('jest', 'npx', ['jest', ...jestArgs], { allowFailure: true });
  times.push(['jest', jest.took]);

  log(summary());
  process.exit(jest.code);
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
