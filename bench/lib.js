'use strict';
// Shared by the benchmark scripts: a private nats-server, scratch databases, child services,
// and latency statistics. Benchmarks print figures; they assert nothing.
const { spawn, execFileSync } = require('node:child_process');
const { readFileSync } = require('node:fs');
const { join, resolve } = require('node:path');

const ROOT = resolve(__dirname, '..');
const PG_ADMIN = 'postgres://postgres@127.0.0.1:5432/postgres';

/** Builds the apps and what they use, and the test harness whose helpers the benchmarks share. */
function build(apps) {
  // BENCH_NO_BUILD=1: run the builds as they are (e.g. a dist patched by hand to trace it).
  if (process.env.BENCH_NO_BUILD) return;
  const filters = [...apps, 'testing'].map((a) => `--filter=@keyway/${a}...`);
  execFileSync('npx', ['turbo', 'run', 'build', '--output-logs=errors-only', ...filters], {
    cwd: ROOT,
    stdio: 'inherit',
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
  });
}

// The harness's own helpers (free ports, a private nats-server), from its build: required when
// called, since `build` runs first.
const testing = () => require('@keyway/testing');
const freePort = () => testing().freePort();
/** A private nats-server with JetStream (its own port and store): `{ url, stop() }`. */
const startNats = () => testing().PrivateNats.start();

/**
 * A child `node <nodeArgs>` on a free port (in `portVar`), its output kept; resolves once
 * `ready(port, output)` is true. `stop()` sends `signal`, then SIGKILL after 5 s.
 */
async function startChild(name, nodeArgs, env, { portVar = 'PORT', ready, signal = 'SIGTERM' }) {
  const port = await freePort();
  let output = '';
  const child = spawn(process.execPath, nodeArgs, {
    cwd: ROOT,
    env: { PATH: process.env.PATH, ...env, [portVar]: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited:\n${output.slice(-2000)}`);
    if (await ready(port, output)) break;
    if (Date.now() > deadline) throw new Error(`${name} not ready:\n${output.slice(-2000)}`);
    await sleep(20);
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid,
    output: () => output,
    stop: () =>
      new Promise((res) => {
        if (child.exitCode !== null) return res();
        child.once('exit', res);
        child.kill(signal);
        setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
      }),
  };
}

/**
 * An app from its build, ready once its /health/ready answers 200. The gateway also gets a free
 * ADMIN_PORT (unless `env` names one): its operator API answers there only, at `adminUrl`.
 */
async function startApp(app, env, extraNodeArgs = []) {
  if (app === 'gateway') {
    const adminPort = env.ADMIN_PORT ?? String(await freePort());
    const child = await startAppOn(app, { ...env, ADMIN_PORT: adminPort }, extraNodeArgs);
    return { ...child, adminUrl: `http://127.0.0.1:${adminPort}` };
  }
  return startAppOn(app, env, extraNodeArgs);
}

function startAppOn(app, env, extraNodeArgs) {
  // BENCH_NODE_ARGS reaches the services, e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof' to profile them.
  // The V8 flags the app ships with (apps/<app>/package.json keyway.nodeOptions), then the bench's.
  const shipped = require(join(ROOT, 'apps', app, 'package.json')).keyway?.nodeOptions ?? '';
  const nodeArgs = [...shipped.split(' '), ...(process.env.BENCH_NODE_ARGS ?? '').split(' '), ...extraNodeArgs].filter(Boolean);
  return startChild(app, [...nodeArgs, join(ROOT, 'apps', app, 'dist', 'main.js')], { LOG_LEVEL: 'warn', ...env }, {
    portVar: app === 'gateway' ? 'PORT' : 'HEALTH_PORT',
    ready: async (port) => {
      try {
        return (await fetch(`http://127.0.0.1:${port}/health/ready`)).status === 200;
      } catch {
        return false;
      }
    },
  });
}

/** The scratch databases whose names start with `prefix`. */
const dropDatabases = (prefix) => require('@keyway/database').dropDatabases(PG_ADMIN, prefix);

/** CPU time (user + system) a process has used, from /proc, in ms. */
function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** `--name <number>` from the command line, else `fallback`. */
function numberArg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? Number(process.argv[i + 1]) : fallback;
}

function stats(samplesMs) {
  const s = [...samplesMs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  return { n: s.length, p50: q(0.5), p99: q(0.99), max: s[s.length - 1] ?? NaN };
}

/** Runs `fn` `total` times with `concurrency` in flight; returns per-call latencies and the rate. */
async function closedLoop(total, concurrency, fn) {
  const lat = [];
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const t = process.hrtime.bigint();
        await fn(i);
        lat.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { rate: total / seconds, seconds, ...stats(lat) };
}

const fmt = (n, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');

/** Deletes the Redis keys under `prefix` (a bench's counters), through `redis`: an ioredis client or a URL. */
async function clearRedis(redis, prefix) {
  const { Redis } = require('ioredis');
  const client = typeof redis === 'string' ? new Redis(redis, { lazyConnect: true, maxRetriesPerRequest: 1 }) : redis;
  try {
    if (typeof redis === 'string') await client.connect();
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await client.del(...keys);
    } while (cursor !== '0');
  } finally {
    if (typeof redis === 'string') client.disconnect();
  }
}

module.exports = { clearRedis, build, cpuMs, freePort, numberArg, startNats, startApp, startChild, dropDatabases, stats, closedLoop, fmt };
