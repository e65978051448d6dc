'use strict';
/**
 * Micro-benchmark of RateLimiter.consume(): calls/s and p50/p99 latency, in memory and on Redis.
 *   node apps/gateway/bench/rate-limit.js            (REDIS_URL defaults to redis://127.0.0.1:6379)
 * Uses the build (apps/gateway/dist) when present, else compiles the sources on the fly.
 * Each scenario runs `calls` consumes over 1,000 keys whose limits never refuse (the hot path),
 * either one at a time (latency) or with `concurrency` in flight (throughput, as under load).
 */
const fs = require('node:fs');
const path = require('node:path');
const { clearRedis } = require('../../../bench/lib');

const dist = path.join(__dirname, '../dist/rate-limit/rate-limiter.js');
let RateLimiter;
if (fs.existsSync(dist)) {
  ({ RateLimiter } = require(dist));
} else {
  require('./load-ts.js');
  ({ RateLimiter } = require('../src/rate-limit/rate-limiter.ts'));
}

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const LIMITS = { burst_per_second: 1e9, per_minute: 1e9, per_hour: 1e9, daily: 1e9 };
const KEYS = Array.from({ length: 1000 }, (_, i) => `key_${i}`);
const logger = { warn: (m) => console.error(`warn: ${m}`), log: (m) => console.error(m) };

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

  console.table(rows);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
