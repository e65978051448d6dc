import { RATE_LIMIT_DEFAULTS, type RateLimit } from '@keyway/contracts';
import { Redis } from 'ioredis';
import { RateLimiter } from './rate-limiter';
import { awayFromBoundary, HangingProxy, recordingLogger } from './testing';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `keyway:test:${Date.now()}:${process.pid}:`;
const big = 1_000_000;
const only = (w: Partial<RateLimit>): RateLimit => ({ burst_per_second: big, per_minute: big, per_hour: big, daily: big, ...w });

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

  describe('leases (busy keys with room to spare)', () => {
    const counter = async (keyId: string, w: string): Promise<number> => Number((await admin.get(`${prefix}{${keyId}}:${w}`)) ?? 0);
    const wave = (l: RateLimiter, keyId: string, limits: RateLimit, n: number) => Promise.all(Array.from({ length: n }, () => l.consume(keyId, limits)));
    // Replicas of a test's own: closed after it even when an assertion fails (an open Redis
    // connection would keep jest from ending). Closing twice is a no-op.
    const opened: RateLimiter[] = [];
    const replica = (): RateLimiter => {
      const l = new RateLimiter({ redisUrl: REDIS_URL, keyPrefix: prefix, logger, commandTimeoutMs: 2_000 });
      opened.push(l);
      return l;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((l) => l.close()));
    });

    it('admits a busy key from a lease, counted in Redis beforehand, and gives back what it did not use', async () => {
      await awayFromBoundary('per_hour', 5_000);
      await awayFromBoundary('burst_per_second', 700);
      const own = replica();
      expect(await own.ready()).toBe(true);
      const limits = only({});
      const first = await wave(own, 'key_lease', limits, 10);
      const second = await wave(own, 'key_lease', limits, 10); // takes a lease of 8 × 10 beyond itself
      const third = await wave(own, 'key_lease', limits, 20); // 20 of those 80, no Redis call
      expect([...first, ...second, ...third].every((d) => d.allowed)).toBe(true);
      expect(await counter('key_lease', 'per_hour')).toBe(10 + 10 + 80);
      // Each call still sees its own count: remaining goes down one by one across the lease.
      expect(third.map((d) => d.remainingByWindow.per_hour)).toEqual(Array.from({ length: 20 }, (_, i) => big - 21 - i));
      // The lease ends with Redis's second; the sweep gives back the 60 calls nobody made to the
      // windows they were taken from (not to the second, which has ended).
      await new Promise((r) => setTimeout(r, 1_700));
      expect(await counter('key_lease', 'per_hour')).toBe(40);
      expect(await counter('key_lease', 'daily')).toBe(40);
      // A call in the new second is counted in Redis again (no lease outlives its second).
      await own.consume('key_lease', limits);
      expect(await counter('key_lease', 'per_hour')).toBe(41);
      await own.close();
      expect(await counter('key_lease', 'per_hour')).toBe(41);
    });

    it('does not serve a call from a lease taken under other limits: a lowered override bites at once', async () => {
      await awayFromBoundary('per_hour', 5_000);
      await awayFromBoundary('burst_per_second', 700);
      const own = replica();
      expect(await own.ready()).toBe(true);
      await wave(own, 'key_lease_override', only({}), 10);
      await wave(own, 'key_lease_override', only({}), 10); // a lease of 80 is now held
      const lowered = await own.consume('key_lease_override', only({ per_hour: 5 }));
      expect(lowered).toMatchObject({ allowed: false, window: 'per_hour', limit: 5, remaining: 0 });
      await own.close();
    });

    it('never lets the replicas together admit more than a limit, and loses nothing once leases end', async () => {
      await awayFromBoundary('per_minute', 5_000);
      const limits = only({ per_minute: 3_000 });
      const x = replica();
      const y = replica();
      expect((await Promise.all([x.ready(), y.ready()])).every(Boolean)).toBe(true);
      let allowed = 0;
      for (let i = 0; i < 40; i++) {
        const [dx, dy] = await Promise.all([wave(x, 'key_shared_lease', limits, 60), wave(y, 'key_shared_lease', limits, 40)]);
        allowed += [...dx, ...dy].filter((d) => d.allowed).length;
        expect(allowed).toBeLessThanOrEqual(3_000);
        expect(await counter('key_shared_lease', 'per_minute')).toBeLessThanOrEqual(3_000);
      }
      await Promise.all([x.close(), y.close()]);
      // What was admitted is what Redis counts: no lease kept a call it did not admit.
      expect(await counter('key_shared_lease', 'per_minute')).toBe(allowed);
      // Near the limit every call went to Redis: the last calls filled the window exactly.
      expect(allowed).toBe(3_000);
    });

    it('does not lease a key whose limit is near: a 100-per-minute key is counted call by call', async () => {
      await awayFromBoundary('per_minute', 3_000);
      const limits = only({ per_minute: 100 });
      for (let i = 0; i < 3; i++) await wave(a, 'key_no_lease', limits, 10);
      expect(await counter('key_no_lease', 'per_minute')).toBe(30);
    });
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

  it('lets counters expire at the end of their clock-aligned window (daily: UTC midnight)', async () => {
    await a.consume('key_ttl', { ...RATE_LIMIT_DEFAULTS });
    const ttl = await admin.pttl(`${prefix}{key_ttl}:daily`);
    const untilMidnight = 86_400_000 - (Date.now() % 86_400_000);
    expect(Math.abs(ttl - untilMidnight)).toBeLessThan(1_000);
    expect(await admin.pttl(`${prefix}{key_ttl}:burst_per_second`)).toBeLessThanOrEqual(1_000);
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

      proxy.resume();
      await new Promise((r) => setTimeout(r, 150));
      // The first call after the breaker opens again may still meet replies queued by the hang.
      for (let i = 0; i < 5 && c.mode !== 'redis'; i++) {
        await c.consume('key_hang', only({}));
        await new Promise((r) => setTimeout(r, 150));
      }
      await c.consume('key_hang', only({}));
      expect(c.mode).toBe('redis');
      expect(own.lines.map(([level]) => level)).toEqual(['warn', 'log']);
    } finally {
      await c.close();
      await proxy.stop();
    }
  });
});
