#!/usr/bin/env node
'use strict';
/**
 * `npm test [-- <jest args>]`: install if needed, make sure Postgres, NATS and Redis answer, build
 * (the foundation tests spawn the built services), type-check, lint, then jest. Each step prints
 * its wall time; the exit code is jest's (or the first failing step's). Lint is three checks, all
 * run before a failure stops the test: ESLint (with the import boundaries), knip (unused files,
 * exports and dependencies: knip.jsonc) and jscpd (copy-paste over the threshold: .jscpd.json).
 */
const { log, step, seconds, installDependencies, ensureServices } = require('./lib/services');

/** The lint step's checks; `npm run lint` runs the same. */
const LINT = [
  ['eslint', 'npx', ['eslint', '.', '--max-warnings', '0']],
  // Hints about entry patterns that match nothing in some workspace (a package without specs yet)
  // are not problems: `npx knip` alone shows them.
  ['knip', 'npx', ['knip', '--no-progress', '--no-config-hints']],
  ['jscpd', 'npx', ['jscpd']],
];

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
  const lint = LINT.map(([name, cmd, args]) => {
    const r = step(name, cmd, args, { allowFailure: true });
    times.push([name, r.took]);
    return r.code;
  });
  const lintFailed = lint.find((code) => code !== 0);
  if (lintFailed !== undefined) {
    log(summary());
    process.exit(lintFailed);
  }

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
