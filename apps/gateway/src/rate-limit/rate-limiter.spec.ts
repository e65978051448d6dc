import { RATE_LIMIT_DEFAULTS, type RateLimit } from '@keyway/contracts';
import fc from 'fast-check';
import type { MemoryWindowStore } from './memory-store';
import { RateLimiter } from './rate-limiter';
import { awayFromBoundary, checkRun, manualClock, play, recordingLogger, runArbitraries } from './testing';

const big = 1_000_000;
const only = (w: Partial<RateLimit>): RateLimit => ({ burst_per_second: big, per_minute: big, per_hour: big, daily: big, ...w });

describe('RateLimiter in memory (no REDIS_URL)', () => {
  let limiter: RateLimiter;
  const logger = recordingLogger();
  beforeEach(() => {
    limiter = new RateLimiter({ keyPrefix: `keyway:test:${Date.now()}:`, logger });
  });
  afterEach(() => limiter.close());

  it('admits exactly the per-minute limit of 300 concurrent calls', async () => {
    await awayFromBoundary('per_minute', 3_000);
    const decisions = await Promise.all(Array.from({ length: 300 }, () => limiter.consume('key_a', only({ per_minute: 100 }))));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(100);
    expect(limiter.mode).toBe('memory');
    expect(await limiter.ready()).toBe(false);
  });

  it('refuses the 61st call within a second with the default limits, naming the window', async () => {
    await awayFromBoundary('burst_per_second', 500);
    const decisions = [];
    for (let i = 0; i < 61; i++) decisions.push(await limiter.consume('key_b', { ...RATE_LIMIT_DEFAULTS }));
    expect(decisions.slice(0, 60).every((d) => d.allowed)).toBe(true);
    const refused = decisions[60];
    expect(refused).toMatchObject({ allowed: false, window: 'burst_per_second', limit: 60, remaining: 0 });
    expect(refused?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
  });

  it('does not count a refused call in the windows it passed', async () => {
    await awayFromBoundary('burst_per_second', 500);
    const limits = only({ burst_per_second: 2, per_minute: 10 });
    for (let i = 0; i < 5; i++) await limiter.consume('key_c', limits);
    const peek = await limiter.peek('key_c', limits);
    expect(peek.remainingByWindow).toMatchObject({ burst_per_second: 0, per_minute: 8 });
    expect(peek.allowed).toBe(false);
  });

  it('keeps each key to its own limits (per-key override)', async () => {
    await awayFromBoundary('burst_per_second', 500);
    const tight = { ...RATE_LIMIT_DEFAULTS, burst_per_second: 5 };
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => limiter.consume(i % 2 ? 'key_tight' : 'key_default', i % 2 ? tight : { ...RATE_LIMIT_DEFAULTS })));
    expect(results.filter((d, i) => i % 2 === 1 && d.allowed)).toHaveLength(5);
    expect(results.filter((d, i) => i % 2 === 0 && d.allowed)).toHaveLength(10);
  });

  it('peek counts nothing', async () => {
    const limits = { ...RATE_LIMIT_DEFAULTS };
    await limiter.consume('key_d', limits);
    const a = await limiter.peek('key_d', limits);
    const b = await limiter.peek('key_d', limits);
    expect(a.remainingByWindow).toEqual(b.remainingByWindow);
    expect(a.remainingByWindow.daily).toBe(RATE_LIMIT_DEFAULTS.daily - 1);
  });

  it('never admits more than the smallest limit in a burst (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({ burst_per_second: fc.integer({ min: 1, max: 40 }), per_minute: fc.integer({ min: 1, max: 40 }), per_hour: fc.integer({ min: 1, max: 40 }), daily: fc.integer({ min: 1, max: 40 }) }),
        fc.integer({ min: 1, max: 80 }),
        async (limits, calls) => {
          await awayFromBoundary('burst_per_second', 200);
          const key = `prop_${Math.random().toString(36).slice(2)}`;
          const decisions = await Promise.all(Array.from({ length: calls }, () => limiter.consume(key, limits)));
          const allowed = decisions.filter((d) => d.allowed).length;
          const smallest = Math.min(limits.burst_per_second, limits.per_minute, limits.per_hour, limits.daily);
          expect(allowed).toBe(Math.min(calls, smallest));
          for (const d of decisions) if (!d.allowed) expect(d.retryAfterSeconds).toBeGreaterThanOrEqual(1);
        },
      ),
      { numRuns: 50 },
    );
  });
});

const { limitsArb, startArb, stepsArb } = runArbitraries(fc);

describe('RateLimiter in memory: sliding windows on an injected clock', () => {
  const clock = manualClock(0);
  let limiter: RateLimiter;
  beforeEach(() => {
    limiter = new RateLimiter({ keyPrefix: 'keyway:test:', logger: recordingLogger(), clock: clock.now });
  });
  afterEach(() => limiter.close());

  it('refuses a second allowance across a boundary of the clock (second, minute, hour)', async () => {
    const edges = [
      ['burst_per_second', 60, '2026-11-24T10:20:59.950Z', 100],
      ['per_minute', 100, '2026-11-24T10:20:59.000Z', 2_000],
      ['per_hour', 5_000, '2026-11-24T10:59:59.000Z', 2_000],
    ] as const;
    for (const [w, limit, before, acrossMs] of edges) {
      const limits = only({ [w]: limit });
      clock.set(Date.parse(before));
      const first = await Promise.all(Array.from({ length: limit }, () => limiter.consume(`key_edge_${w}`, limits)));
      clock.advance(acrossMs); // past the clock's boundary, well inside the window
      const second = await Promise.all(Array.from({ length: limit }, () => limiter.consume(`key_edge_${w}`, limits)));
      expect(first.filter((d) => d.allowed)).toHaveLength(limit);
      expect(second.filter((d) => d.allowed)).toHaveLength(0);
      expect(second[0]).toMatchObject({ window: w, remaining: 0 });
    }
  });

  it('forgets a key an hour after its last call, but keeps its daily count until 00:00 UTC', async () => {
    const memory = (limiter as unknown as { memory: MemoryWindowStore }).memory;
    const limits = only({ per_hour: 2, daily: 3 });
    clock.set(Date.parse('2026-11-24T20:00:00.000Z'));
    expect((await limiter.consume('key_quiet', limits)).allowed).toBe(true);
    expect((await limiter.consume('key_quiet', limits)).allowed).toBe(true);
    clock.advance(3_600_000);
    memory.sweep();
    expect(memory.size).toEqual({ active: 0, quiet: 1 });
    expect((await limiter.consume('key_quiet', limits)).allowed).toBe(true);
    const refused = await limiter.consume('key_quiet', limits);
    expect(refused).toMatchObject({ allowed: false, window: 'daily', remainingByWindow: { per_hour: 1, daily: 0 } });
    clock.set(Date.parse('2026-11-25T00:00:00.000Z') + 3_600_000);
    memory.sweep();
    expect(memory.size).toEqual({ active: 0, quiet: 0 });
    expect((await limiter.consume('key_quiet', limits)).remainingByWindow.daily).toBe(2);
  });

  it('in any rolling window admits at most the limit × (1 + 0), and refuses only when a window one bucket longer is full (property)', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(limitsArb, startArb, stepsArb, async (limits, start, steps) => {
        clock.set(start);
        const { events, retryBroken } = await play(limiter, clock, `key_prop_${run++}`, limits, steps);
        const { over, under } = checkRun(events, limits);
        expect(over).toEqual([]);
        expect(under).toEqual([]);
        expect(retryBroken).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });
});

describe('RateLimiter with an unreachable Redis', () => {
  it('answers from memory, fast, without throwing, and logs the fallback once', async () => {
    const logger = recordingLogger();
    const limiter = new RateLimiter({ redisUrl: 'redis://127.0.0.1:1', keyPrefix: `keyway:test:${Date.now()}:`, logger });
    try {
      expect(await limiter.ready(300)).toBe(false);
      await awayFromBoundary('burst_per_second', 500);
      const limits = only({ burst_per_second: 10 });
      const slowest = { ms: 0 };
      const decisions = [];
      for (let i = 0; i < 20; i++) {
        const t = performance.now();
        decisions.push(await limiter.consume('key_dead', limits));
        slowest.ms = Math.max(slowest.ms, performance.now() - t);
      }
      expect(decisions.filter((d) => d.allowed)).toHaveLength(10);
      expect(limiter.mode).toBe('memory');
      expect(slowest.ms).toBeLessThan(50);
      expect(logger.lines.filter(([level]) => level === 'warn')).toHaveLength(1);
    } finally {
      await limiter.close();
    }
  });
});
