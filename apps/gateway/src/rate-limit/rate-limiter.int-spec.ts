import { RATE_LIMIT_DEFAULTS, type RateLimit } from '@keyway/contracts';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { RateLimiter } from './rate-limiter';
import type { RateLimitDecision } from './windows';
import { awayFromBoundary, checkRun, HangingProxy, manualClock, play, recordingLogger, runArbitraries } from './testing';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `keyway:test:${Date.now()}:${process.pid}:`;
const big = 1_000_000;
const only = (w: Partial<RateLimit>): RateLimit => ({ burst_per_second: big, per_minute: big, per_hour: big, daily: big, ...w });
const { limitsArb, startArb, stepsArb } = runArbitraries(fc);

describe('RateLimiter on Redis (shared by replicas)', () => {
  const admin = new Redis(REDIS_URL, { lazyConnect: true });
  const logger = recordingLogger();
  let a: RateLimiter;
  let b: RateLimiter;

  beforeAll(async () => {
    await admin.connect();
    // These replicas check that counts are shared, so they must not time out into the per-replica
    // fallback: a 300-call burst on a 2-core machine busy with other test runs can take longer than
    // the default 50 ms per command. The timeout path has its own test below.
    a = new RateLimiter({ redisUrl: REDIS_URL, keyPrefix: prefix, logger, commandTimeoutMs: 2_000 });
    b = new RateLimiter({ redisUrl: REDIS_URL, keyPrefix: prefix, logger, commandTimeoutMs: 2_000 });
    expect(await a.ready()).toBe(true);
    expect(await b.ready()).toBe(true);
  });

  afterAll(async () => {
    await Promise.all([a.close(), b.close()]);
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length > 0) await admin.del(...keys);
    await admin.quit();
  });

  it('admits exactly 100 of 300 concurrent calls through two replicas against per_minute 100', async () => {
    await awayFromBoundary('per_minute', 3_000);
    const limits = only({ per_minute: 100 });
    const decisions = await Promise.all(Array.from({ length: 300 }, (_, i) => (i % 2 ? a : b).consume('key_shared', limits)));
    expect(logger.lines).toEqual([]);
    expect(decisions.filter((d) => d.allowed)).toHaveLength(100);
    expect(a.mode).toBe('redis');
    const refused = decisions.find((d) => !d.allowed);
    expect(refused).toMatchObject({ window: 'per_minute', limit: 100, remaining: 0 });
    expect(refused?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    // A refused call counted nowhere: the hour window saw only the 100 admitted.
    const peek = await b.peek('key_shared', limits);
    expect(peek.remainingByWindow.per_hour).toBe(big - 100);
    expect(peek.allowed).toBe(false);
  });

  it('answers the calls that meet in one batch one after another: the first ones in, remaining counting down', async () => {
    await awayFromBoundary('per_minute', 3_000);
    const limits = only({ per_minute: 10 });
    // Same replica, same tick: one script run for all 25 (and a second key's calls beside them).
    const decisions = await Promise.all(Array.from({ length: 25 }, () => a.consume('key_batch', limits)));
    const other = await Promise.all(Array.from({ length: 3 }, () => a.consume('key_batch_other', limits)));
    expect(decisions.map((d) => d.allowed)).toEqual([...Array(10).fill(true), ...Array(15).fill(false)]);
    expect(decisions.slice(0, 10).map((d) => d.remaining)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    expect(decisions.slice(10).every((d) => d.remaining === 0 && d.window === 'per_minute')).toBe(true);
    expect(other.map((d) => d.remaining)).toEqual([9, 8, 7]);
    // A changed override inside the same batch is counted under its own limits.
    const mixed = await Promise.all([a.consume('key_batch_mixed', only({ per_minute: 1 })), a.consume('key_batch_mixed', only({ per_minute: 5 }))]);
    expect(mixed.map((d) => d.allowed)).toEqual([true, true]);
    expect(mixed.map((d) => d.remaining)).toEqual([0, 3]);
  });

  it('refuses the 61st call within a second with the default limits', async () => {
    await awayFromBoundary('burst_per_second', 600);
    const decisions = await Promise.all(Array.from({ length: 61 }, (_, i) => (i % 2 ? a : b).consume('key_burst', { ...RATE_LIMIT_DEFAULTS })));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(60);
    const refused = decisions.find((d) => !d.allowed);
    expect(refused).toMatchObject({ allowed: false, window: 'burst_per_second', limit: 60 });
    expect(refused?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
  });

  it('applies per-key overrides independently', async () => {
    await awayFromBoundary('burst_per_second', 600);
    const tight = { ...RATE_LIMIT_DEFAULTS, burst_per_second: 3 };
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => a.consume(i % 2 ? 'key_tight' : 'key_loose', i % 2 ? tight : { ...RATE_LIMIT_DEFAULTS })));
    expect(results.filter((d, i) => i % 2 === 1 && d.allowed)).toHaveLength(3);
    expect(results.filter((d, i) => i % 2 === 0 && d.allowed)).toHaveLength(10);
  });

  // Was "lets counters expire at the end of their clock-aligned window": the four fixed-window
  // counters are one state per key now; what stays is that nothing outlives what it still counts.
  it('keeps a key\'s state while its windows count: the hour, or the daily quota until UTC midnight', async () => {
    await a.consume('key_ttl', { ...RATE_LIMIT_DEFAULTS });
    const ttl = await admin.pttl(`${prefix}{key_ttl}`);
    const expected = Math.max(86_400_000 - (Date.now() % 86_400_000), 3_600_000);
    expect(Math.abs(ttl - expected)).toBeLessThan(1_000);
  });

  it('falls back to memory when Redis stops answering, fast, logs once, and comes back', async () => {
    const url = new URL(REDIS_URL);
    const proxy = await HangingProxy.start({ host: url.hostname, port: Number(url.port || 6379) });
    const own = recordingLogger();
    const c = new RateLimiter({ redisUrl: `redis://127.0.0.1:${proxy.port}`, keyPrefix: prefix, logger: own, retryRedisAfterMs: 100 });
    try {
      expect(await c.ready()).toBe(true);
      await c.consume('key_hang', only({}));
      expect(c.mode).toBe('redis');

      proxy.hang();
      const started = performance.now();
      const during = [];
      for (let i = 0; i < 10; i++) during.push(await c.consume('key_hang', only({})));
      const elapsed = performance.now() - started;
      // One call waits for the command timeout; the others go straight to memory.
      expect(elapsed).toBeLessThan(10 * 50);
      expect(during.every((d) => d.allowed)).toBe(true);
      expect(c.mode).toBe('memory');
      // Logged once for the outage, not once per call.
      expect(own.lines.map(([level]) => level)).toEqual(['warn']);

      proxy.resume();
      await new Promise((r) => setTimeout(r, 150));
      // The first call after the breaker opens again may still meet replies queued by the hang.
      for (let i = 0; i < 5 && c.mode !== 'redis'; i++) {
        await c.consume('key_hang', only({}));
        await new Promise((r) => setTimeout(r, 150));
      }
      await c.consume('key_hang', only({}));
      expect(c.mode).toBe('redis');
      // Back, and said so once. On a loaded machine a command may outlast its 50 ms timeout once more
      // after the resume (CI saw it): a second fall-back, logged once too, and its own return.
      const levels = own.lines.map(([level]) => level);
      expect(levels.length % 2).toBe(0);
      expect(levels).toEqual(levels.map((_, i) => (i % 2 === 0 ? 'warn' : 'log')));
    } finally {
      await c.close();
      await proxy.stop();
    }
  });
});

describe('RateLimiter on Redis: sliding windows on an injected clock (the script\'s test-only time)', () => {
  const admin = new Redis(REDIS_URL, { lazyConnect: true });
  const clock = manualClock(0);
  const runPrefix = `keyway:test:clock:${Date.now()}:${process.pid}:`;
  let a: RateLimiter;
  let b: RateLimiter;
  let memory: RateLimiter;
  /** The two replicas take turns: every other call goes to the other one. */
  let turn = 0;
  const replicas = { consume: (keyId: string, limits: RateLimit) => ((turn++ % 2 ? a : b) as RateLimiter).consume(keyId, limits) };

  beforeAll(async () => {
    await admin.connect();
    const options = { redisUrl: REDIS_URL, keyPrefix: runPrefix, logger: recordingLogger(), commandTimeoutMs: 2_000, clock: clock.now };
    a = new RateLimiter(options);
    b = new RateLimiter(options);
    memory = new RateLimiter({ keyPrefix: runPrefix, logger: recordingLogger(), clock: clock.now });
    expect(await a.ready()).toBe(true);
    expect(await b.ready()).toBe(true);
  });

  afterAll(async () => {
    await Promise.all([a.close(), b.close(), memory.close()]);
    const keys = await admin.keys(`${runPrefix}*`);
    if (keys.length > 0) await admin.del(...keys);
    await admin.quit();
  });

  it('refuses a second allowance across a boundary of the clock (second, minute, hour), at both replicas', async () => {
    const edges = [
      ['burst_per_second', 60, '2026-11-24T10:20:59.950Z', 100],
      ['per_minute', 100, '2026-11-24T10:20:59.000Z', 2_000],
      ['per_hour', 5_000, '2026-11-24T10:59:59.000Z', 2_000],
    ] as const;
    for (const [w, limit, before, acrossMs] of edges) {
      const limits = only({ [w]: limit });
      clock.set(Date.parse(before));
      const first = await Promise.all(Array.from({ length: limit }, () => replicas.consume(`key_edge_${w}`, limits)));
      clock.advance(acrossMs);
      const second = await Promise.all(Array.from({ length: limit }, () => replicas.consume(`key_edge_${w}`, limits)));
      expect(first.filter((d) => d.allowed)).toHaveLength(limit);
      expect(second.filter((d) => d.allowed)).toHaveLength(0);
      expect(second[0]).toMatchObject({ window: w, remaining: 0 });
      expect(a.mode).toBe('redis');
    }
  });

  it('resets the daily quota at 00:00 UTC of the script\'s time', async () => {
    const limits = only({ daily: 3 });
    clock.set(Date.parse('2026-11-24T23:59:59.000Z'));
    const before = await Promise.all(Array.from({ length: 5 }, () => replicas.consume('key_daily', limits)));
    expect(before.filter((d) => d.allowed)).toHaveLength(3);
    for (const d of before.filter((x) => !x.allowed)) expect(d).toMatchObject({ window: 'daily', remaining: 0, retryAfterSeconds: 1 });
    clock.advance(1_000);
    expect((await replicas.consume('key_daily', limits)).allowed).toBe(true);
  });

  it('in any rolling window admits at most the limit × (1 + 0) across two replicas (property)', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(limitsArb, startArb, stepsArb, async (limits, start, steps) => {
        clock.set(start);
        const { events, retryBroken } = await play(replicas, clock, `key_prop_${run++}`, limits, steps);
        const { over, under } = checkRun(events, limits);
        expect(over).toEqual([]);
        expect(under).toEqual([]);
        expect(retryBroken).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });

  it('answers exactly as the memory store does, call for call (one algorithm)', async () => {
    let run = 0;
    const view = (e: { at: number; decision: RateLimitDecision }) => {
      const { allowed, window, limit, remaining, resetSeconds, retryAfterSeconds, remainingByWindow, resetSecondsByWindow } = e.decision;
      return { at: e.at, allowed, window, limit, remaining, resetSeconds, retryAfterSeconds, remainingByWindow, resetSecondsByWindow };
    };
    await fc.assert(
      fc.asyncProperty(limitsArb, startArb, stepsArb, async (limits, start, steps) => {
        const key = `key_same_${run++}`;
        clock.set(start);
        const fromRedis = await play(a, clock, key, limits, steps);
        clock.set(start);
        const fromMemory = await play(memory, clock, key, limits, steps);
        expect(fromRedis.events.map(view)).toEqual(fromMemory.events.map(view));
        expect(await a.peek(key, limits)).toEqual(await memory.peek(key, limits));
      }),
      { numRuns: 60 },
    );
  });
});
