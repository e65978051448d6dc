'use strict';
/**
 * Benchmark of RateLimiter.consume(), printing figures (it asserts nothing).
 *   npm run bench -- rate-limit      (REDIS_URL defaults to redis://127.0.0.1:6379)
 * Uses the build (apps/gateway/dist) when present, else compiles the sources on the fly.
 *
 * 1. Realistic load: 10,000 keys on the default limits (60/s, 100/min, 5,000/h, 100,000/day), each
 *    call on a key drawn at random, 64 in flight (as a gateway under many connections), on Redis:
 *    calls/s, p50/p99, Redis round trips and script runs per call. With and without leases when
 *    the build has them (`LEASE` in redis-store), the cases taking turns over `BENCH_ROUNDS` (3)
 *    rounds, medians printed: the shared machine drifts by ±10 % from minute to minute.
 * 2. Micro: `calls` consumes over 1,000 keys whose limits never refuse, one at a time (latency)
 *    or with `concurrency` in flight, in memory and on Redis.
 * 2b. Redis CPU per call: the realistic load against a private redis-server (when installed), its
 *    CPU time (/proc) divided by the calls: what one script run costs the shared Redis.
 * 3. The algorithm, simulated on a clock (no I/O), against today's fixed windows and the usual
 *    two-counter approximation, per window at its default limit, for three clients:
 *    - "burst at a boundary": the limit just before a clock boundary, then a call as often as it
 *      is allowed: the most calls admitted in any interval shorter than the window, × the limit
 *      (the over-admission: 1.00 means none);
 *    - "steady at the limit": one call every window/limit: the share admitted (100 % for an exact
 *      sliding log; below it, the stricter side's cost);
 *    - "greedy": a call as often as allowed for 20 windows: calls admitted per window ÷ limit.
 */
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { clearRedis, freePort, sleep } = require('../../../bench/lib');

const dist = path.join(__dirname, '../dist/rate-limit/rate-limiter.js');
let RateLimiter;
let store;
let windows;
if (fs.existsSync(dist)) {
  ({ RateLimiter } = require(dist));
  store = require(path.join(__dirname, '../dist/rate-limit/redis-store.js'));
  windows = require(path.join(__dirname, '../dist/rate-limit/windows.js'));
} else {
  require('./load-ts.js');
  ({ RateLimiter } = require('../src/rate-limit/rate-limiter.ts'));
  store = require('../src/rate-limit/redis-store.ts');
  windows = require('../src/rate-limit/windows.ts');
}
const { RATE_LIMIT_CEILING_DEFAULTS, RATE_LIMIT_DEFAULTS } = require('@keyway/contracts');

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const LIMITS = { burst_per_second: 1e9, per_minute: 1e9, per_hour: 1e9, daily: 1e9 };
const KEYS = Array.from({ length: 1000 }, (_, i) => `key_${i}`);
const logger = { warn: (m) => console.error(`warn: ${m}`), log: (m) => console.error(m) };

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Counts what the limiter sends to Redis: a round trip is one pipeline, or one script call sent
 * alone; a script run is one call of the limiter's script, alone or inside a pipeline.
 */
function countRedis(limiter) {
  const client = limiter.redis.client;
  const counts = { roundTrips: 0, scripts: 0 };
  // ioredis copies the client's script commands onto each pipeline it makes: one wrapper serves
  // both, and `this` says which one it runs on.
  const script = client.keywayRateLimit;
  client.keywayRateLimit = function (...args) {
    if (this === client) counts.roundTrips++;
    counts.scripts++;
    return script.apply(this, args);
  };
  const pipeline = client.pipeline.bind(client);
  client.pipeline = (...args) => {
    counts.roundTrips++;
    return pipeline(...args);
  };
  return counts;
}

/** Turns leases off in this process when the build has them (no key ever has that much room). */
function setLeases(on) {
  if (!store.LEASE) return false;
  if (store.LEASE.__minSpare === undefined) store.LEASE.__minSpare = store.LEASE.minSpare;
  store.LEASE.minSpare = on ? store.LEASE.__minSpare : 1e15;
  return true;
}

async function realistic(name, limiter, keys, limits, calls, concurrency) {
  const counts = countRedis(limiter);
  const lat = new Float64Array(calls);
  let next = 0;
  let allowed = 0;
  const worker = async () => {
    for (let i = next++; i < calls; i = next++) {
      const key = keys[(Math.random() * keys.length) | 0];
      const t = performance.now();
      const d = await limiter.consume(key, limits);
      lat[i] = performance.now() - t;
      if (d.allowed) allowed++;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - start) / 1000;
  const sorted = Array.from(lat).sort((a, b) => a - b);
  return {
    case: name,
    'calls/s': calls / seconds,
    'p50 ms': pct(sorted, 50),
    'p99 ms': pct(sorted, 99),
    'round trips/call': counts.roundTrips / calls,
    'scripts/call': counts.scripts / calls,
    admitted: allowed / calls,
  };
}

/**
 * 10,000 keys on the default limits, with and without leases (when the build has them), taking
 * turns; fresh key ids per run so that no run inherits another's counts.
 */
async function realisticLoad(prefix) {
  const limits = { ...RATE_LIMIT_DEFAULTS };
  const modes = setLeases(true) ? ['leases on', 'leases off'] : ['no leases (removed)'];
  const results = new Map(modes.map((m) => [m, []]));
  const ceiling = new Map(modes.map((m) => [m, []]));
  const hot = new Map(modes.map((m) => [m, []]));
  for (let round = 0; round < ROUNDS; round++) {
    // Each round starts with the other mode: the first run of a round has the fresher machine.
    for (const mode of round % 2 ? [...modes].reverse() : modes) {
      setLeases(mode === 'leases on');
      const limiter = new RateLimiter({ redisUrl: REDIS_URL, keyPrefix: prefix, logger, commandTimeoutMs: 1_000 });
      if (!(await limiter.ready(2_000))) throw new Error(`Redis does not answer at ${REDIS_URL}`);
      const keys = Array.from({ length: 10_000 }, (_, i) => `key_r${round}_${mode.replace(/\W/g, '')}_${i}`);
      await realistic('warm-up', limiter, keys.slice(0, 500), limits, 2_000, 64);
      results.get(mode).push(await realistic(mode, limiter, keys, limits, 120_000, 64));
      // Context, not the decision: one busy key on the highest limits a tenant allows unless the
      // operator raises its ceiling, and one far beyond them, where a lease can serve calls.
      ceiling.get(mode).push(await realistic(mode, limiter, [`ceil_r${round}_${mode.replace(/\W/g, '')}`], { ...RATE_LIMIT_CEILING_DEFAULTS }, 60_000, 64));
      hot.get(mode).push(await realistic(mode, limiter, [`hot_r${round}_${mode.replace(/\W/g, '')}`], LIMITS, 60_000, 64));
      await limiter.close();
    }
  }
  setLeases(true);
  const row = (mode, runs, keysLabel) => {
    const m = (k) => median(runs.map((r) => r[k]));
    return {
      keys: keysLabel,
      case: mode,
      'calls/s': Math.round(m('calls/s')),
      'p50 ms': +m('p50 ms').toFixed(3),
      'p99 ms': +m('p99 ms').toFixed(3),
      'round trips/call': +m('round trips/call').toFixed(3),
      'scripts/call': +m('scripts/call').toFixed(3),
      admitted: `${(100 * m('admitted')).toFixed(1)} %`,
    };
  };
  console.log(`\nRealistic load on Redis: 64 in flight, keys drawn at random, medians of ${ROUNDS} rounds`);
  console.table([
    ...modes.map((m) => row(m, results.get(m), '10,000 on the defaults')),
    ...modes.map((m) => row(m, ceiling.get(m), '1 hot key, default ceiling')),
    ...modes.map((m) => row(m, hot.get(m), '1 hot key, limits 1e9')),
  ]);
}

/** Today's (before this change) fixed window, aligned to the clock. */
function fixedWindow(size, limit) {
  let start = -1;
  let count = 0;
  return (t) => {
    const s = t - (t % size);
    if (s !== start) [start, count] = [s, 0];
    if (count >= limit) return false;
    count++;
    return true;
  };
}

/** The usual approximation: the previous fixed window's count weighted by its overlap, plus the current one's. */
function twoCounters(size, limit) {
  let current = -1;
  let count = 0;
  let previous = 0;
  return (t) => {
    const k = Math.floor(t / size);
    if (k !== current) [previous, count, current] = [k === current + 1 ? count : 0, 0, k];
    if (previous * (1 - (t - k * size) / size) + count + 1 > limit) return false;
    count++;
    return true;
  };
}

/** This limiter's algorithm, through the function both stores run. */
function sliding(window, limit) {
  const state = windows.newState();
  const limits = { ...LIMITS, [window]: limit };
  return (t) => windows.applyCalls(state, t, limits, 1, 1).admitted === 1;
}

/** The most admitted calls in an interval shorter than `size` (times sorted). */
function mostInAnyWindow(times, size) {
  let most = 0;
  for (let i = 0, from = 0; i < times.length; i++) {
    while (times[from] <= times[i] - size) from++;
    most = Math.max(most, i - from + 1);
  }
  return most;
}

function simulate(make, size, limit) {
  const t0 = Date.parse('2026-11-24T10:00:00.000Z');
  const step = Math.max(1, Math.floor(size / (4 * limit)));
  // Burst just before a clock boundary, then a call every `step` ms for two windows.
  let allow = make(size, limit);
  const admitted = [];
  for (let i = 0; i < limit; i++) if (allow(t0 + size - 1)) admitted.push(t0 + size - 1);
  for (let t = t0 + size; t < t0 + 3 * size; t += step) if (allow(t)) admitted.push(t);
  const burst = mostInAnyWindow(admitted, size) / limit;
  // Steady at the limit.
  allow = make(size, limit);
  let tried = 0;
  let passed = 0;
  for (let t = t0; t < t0 + 20 * size; t += size / limit, tried++) if (allow(Math.floor(t))) passed++;
  // Greedy.
  allow = make(size, limit);
  let greedy = 0;
  for (let t = t0; t < t0 + 20 * size; t += step) if (allow(t)) greedy++;
  return { burst, steady: passed / tried, greedy: greedy / 20 / limit };
}

function algorithms() {
  if (typeof windows.applyCalls !== 'function') return;
  const rows = [];
  for (const window of ['burst_per_second', 'per_minute', 'per_hour']) {
    const size = windows.WINDOW_MS[window];
    const limit = RATE_LIMIT_DEFAULTS[window];
    const buckets = windows.BUCKETS[window];
    for (const [name, make] of [
      ['fixed (before)', fixedWindow],
      ['two counters', twoCounters],
      [`sliding, ${buckets} buckets (this)`, (sz, l) => sliding(window, l)],
    ]) {
      const r = simulate(make, size, limit);
      rows.push({
        window: `${window} (${limit})`,
        algorithm: name,
        'burst at a boundary: most in any window ÷ limit': +r.burst.toFixed(2),
        'steady at the limit: admitted': `${(100 * r.steady).toFixed(1)} %`,
        'greedy: per window ÷ limit': +r.greedy.toFixed(3),
      });
    }
  }
  console.log('\nThe algorithm on a simulated clock (see the header of this file)');
  console.table(rows);
}

/** CPU seconds a process used so far (user + system), from /proc. */
function cpuSeconds(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function redisCpuPerCall() {
  const bin = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((b) => fs.existsSync(b));
  if (!bin) return console.error('redis-server is not installed: Redis CPU per call skipped');
  const port = await freePort();
  const child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  try {
    const url = `redis://127.0.0.1:${port}`;
    const limiter = new RateLimiter({ redisUrl: url, keyPrefix: 'bench:', logger, commandTimeoutMs: 1_000 });
    for (let i = 0; i < 50 && !(await limiter.ready(100)); i++) await sleep(50);
    const keys = Array.from({ length: 10_000 }, (_, i) => `key_${i}`);
    const limits = { ...RATE_LIMIT_DEFAULTS };
    await realistic('warm-up', limiter, keys, limits, 10_000, 64);
    const before = cpuSeconds(child.pid);
    const r = await realistic('cpu', limiter, keys, limits, 100_000, 64);
    const used = cpuSeconds(child.pid) - before;
    await limiter.close();
    console.log(`\nRedis CPU per call (private redis-server, 10,000 keys on the defaults, 64 in flight): ${((used / 100_000) * 1e6).toFixed(1)} µs, ${(r['scripts/call']).toFixed(3)} script runs per call`);
  } finally {
    child.kill('SIGKILL');
  }
}

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function scenario(name, limiter, calls, concurrency) {
  const lat = new Float64Array(calls);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < calls; i = next++) {
      const t = process.hrtime.bigint();
      const d = await limiter.consume(KEYS[i % KEYS.length], LIMITS);
      lat[i] = Number(process.hrtime.bigint() - t) / 1e6;
      if (!d.allowed) throw new Error('refused: the bench limits should never refuse');
    }
  };
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const sorted = Array.from(lat).sort((a, b) => a - b);
  const row = {
    scenario: name,
    mode: limiter.mode,
    concurrency,
    calls,
    'calls/s': Math.round(calls / seconds),
    'p50 ms': +pct(sorted, 50).toFixed(3),
    'p99 ms': +pct(sorted, 99).toFixed(3),
  };
  return row;
}

async function main() {
  const rows = [];
  const prefix = `keyway:bench:${Date.now()}:`;
  algorithms();

  try {
    await realisticLoad(prefix);
  } finally {
    await clearRedis(REDIS_URL, prefix);
  }
  await redisCpuPerCall();

  const memory = new RateLimiter({ keyPrefix: prefix, logger });
  await scenario('warm-up', memory, 20_000, 1);
  rows.push(await scenario('memory', memory, 200_000, 1));
  rows.push(await scenario('memory', memory, 200_000, 64));
  await memory.close();

  const redis = new RateLimiter({ redisUrl: REDIS_URL, keyPrefix: prefix, logger });
  if (await redis.ready(2_000)) {
    await scenario('warm-up', redis, 5_000, 1);
    rows.push(await scenario('redis', redis, 20_000, 1));
    rows.push(await scenario('redis', redis, 50_000, 16));
    rows.push(await scenario('redis', redis, 50_000, 64));
    // Clean up the bench's counters.
    await clearRedis(redis.redis.client, prefix);
  } else {
    console.error(`Redis does not answer at ${REDIS_URL}: Redis scenarios skipped`);
  }
  await redis.close();

  const dead = new RateLimiter({ redisUrl: 'redis://127.0.0.1:1', keyPrefix: prefix, logger: { warn() {}, log() {} } });
  await dead.ready(300);
  rows.push(await scenario('redis down → memory', dead, 100_000, 1));
  await dead.close();

  console.log('\nMicro: 1,000 keys whose limits never refuse');
  console.table(rows);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
