'use strict';
// Shared by the benchmark scripts: a private nats-server, scratch databases, child services,
// and latency statistics. Benchmarks print figures; they assert nothing.
const { spawn, execFileSync } = require('node:child_process');
const { mkdtempSync, rmSync, existsSync } = require('node:fs');
const { createServer, Socket } = require('node:net');
const { tmpdir } = require('node:os');
const { join, resolve } = require('node:path');

const ROOT = resolve(__dirname, '..');

function build(apps) {
  execFileSync('npx', ['turbo', 'run', 'build', '--output-logs=errors-only', ...apps.map((a) => `--filter=@keyway/${a}...`)], {
    cwd: ROOT,
    stdio: 'inherit',
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
  });
}

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

function answers(port) {
  return new Promise((res) => {
    const s = new Socket();
    s.setTimeout(200, () => (s.destroy(), res(false)));
    s.once('connect', () => (s.destroy(), res(true)));
    s.once('error', () => res(false));
    s.connect(port, '127.0.0.1');
  });
}

async function startNats() {
  const bin = ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'].find(existsSync);
  if (!bin) throw new Error('nats-server is not installed');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'keyway-bench-nats-'));
  const child = spawn(bin, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], { stdio: 'ignore' });
  while (!(await answers(port))) await sleep(50);
  return {
    url: `nats://127.0.0.1:${port}`,
    stop: async () => {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startApp(app, env, extraNodeArgs = []) {
  const port = await freePort();
  const portEnv = app === 'gateway' ? { PORT: String(port) } : { HEALTH_PORT: String(port) };
  let output = '';
  // BENCH_NODE_ARGS reaches the services, e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof' to profile them.
  // The V8 flags the app ships with (apps/<app>/package.json keyway.nodeOptions), then the bench's.
  const shipped = require(join(ROOT, 'apps', app, 'package.json')).keyway?.nodeOptions ?? '';
  const nodeArgs = [...shipped.split(' '), ...(process.env.BENCH_NODE_ARGS ?? '').split(' '), ...extraNodeArgs].filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, join(ROOT, 'apps', app, 'dist', 'main.js')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, LOG_LEVEL: 'warn', ...env, ...portEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${app} exited:\n${output.slice(-2000)}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/health/ready`);
      if (r.status === 200) break;
    } catch {}
    if (Date.now() > deadline) throw new Error(`${app} not ready:\n${output.slice(-2000)}`);
    await sleep(50);
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
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
      }),
  };
}

async function dropDatabases(prefix) {
  const { Client } = require('pg');
  const c = new Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await c.connect();
  const r = await c.query("SELECT datname FROM pg_database WHERE datname LIKE $1 || '%'", [prefix]);
  for (const { datname } of r.rows) await c.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
  await c.end();
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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

module.exports = { ROOT, clearRedis, build, freePort, startNats, startApp, dropDatabases, sleep, stats, closedLoop, fmt };
