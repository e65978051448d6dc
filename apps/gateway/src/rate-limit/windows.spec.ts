import { RATE_LIMIT_DEFAULTS, type RateLimit } from '@keyway/contracts';
import { applyCalls, BUCKETS, decide, msUntilUtcMidnight, newState, WINDOW_MS, type PerWindow, type WindowState } from './windows';

const limits: RateLimit = { ...RATE_LIMIT_DEFAULTS };
const resetMs: PerWindow<number> = { burst_per_second: 400, per_minute: 30_000, per_hour: 1_800_000, daily: 43_200_000 };
const state = (allowed: boolean, counts: PerWindow<number>, reset = resetMs): WindowState => ({ allowed, counts, resetMs: reset });
const big = 1_000_000;
const only = (w: Partial<RateLimit>): RateLimit => ({ burst_per_second: big, per_minute: big, per_hour: big, daily: big, ...w });

describe('msUntilUtcMidnight', () => {
  it('resets the daily window at UTC midnight, not 24 h after first use', () => {
    expect(msUntilUtcMidnight(Date.parse('2026-11-24T23:59:30.000Z'))).toBe(30_000);
    expect(msUntilUtcMidnight(Date.parse('2026-11-25T00:00:00.000Z'))).toBe(86_400_000);
  });
});

describe('applyCalls (the algorithm of both stores)', () => {
  const t0 = Date.parse('2026-11-24T10:20:44.950Z'); // 50 ms before a second, 15 s before a minute ends

  it('does not let twice a limit through across a clock boundary: the second window slides', () => {
    const s = newState();
    expect(applyCalls(s, t0, only({ burst_per_second: 10 }), 1, 10).admitted).toBe(10);
    // 100 ms later the clock-aligned second has changed; the sliding one still holds the 10.
    expect(applyCalls(s, t0 + 100, only({ burst_per_second: 10 }), 1, 10).admitted).toBe(0);
    expect(applyCalls(s, t0 + 999, only({ burst_per_second: 10 }), 1, 1).admitted).toBe(0);
    // A burst made at one moment frees exactly one window later.
    expect(applyCalls(s, t0 + 1_000, only({ burst_per_second: 10 }), 1, 10).admitted).toBe(10);
  });

  it('does the same for the minute and the hour', () => {
    for (const [w, size] of [['per_minute', 60_000], ['per_hour', 3_600_000]] as const) {
      const s = newState();
      const l = only({ [w]: 100 });
      expect(applyCalls(s, t0, l, 1, 100).admitted).toBe(100);
      expect(applyCalls(s, t0 + 20_000, l, 1, 100).admitted).toBe(0);
      expect(applyCalls(s, t0 + size - 1, l, 1, 1).admitted).toBe(0);
      expect(applyCalls(s, t0 + size, l, 1, 100).admitted).toBe(100);
    }
  });

  it('keeps the daily window a quota per UTC day', () => {
    const s = newState();
    const l = only({ daily: 5 });
    const beforeMidnight = Date.parse('2026-11-24T23:59:59.900Z');
    expect(applyCalls(s, beforeMidnight, l, 1, 9).admitted).toBe(5);
    const out = applyCalls(s, beforeMidnight, l, 1, 1);
    expect(out.admitted).toBe(0);
    expect(out.resetMs.daily).toBe(100);
    expect(applyCalls(s, beforeMidnight + 100, l, 1, 9).admitted).toBe(5);
  });

  it('counts a bucket until its LAST call leaves the window: never early, at most one bucket late', () => {
    const s = newState();
    const l = only({ per_minute: 2 });
    const bucket = WINDOW_MS.per_minute / BUCKETS.per_minute;
    const start = Math.ceil(t0 / bucket) * bucket; // the start of a bucket
    applyCalls(s, start, l, 1, 1);
    applyCalls(s, start + bucket - 1, l, 1, 1); // same bucket, its end
    // The first call left the window at start + 60 s, but its bucket counts until the second's does.
    const early = applyCalls(s, start + 60_000, l, 1, 1);
    expect(early.admitted).toBe(0);
    expect(early.resetMs.per_minute).toBe(bucket - 1);
    expect(applyCalls(s, start + 60_000 + bucket - 1, l, 1, 1).admitted).toBe(1);
  });

  it('says when each window frees: the first counted call, or the next admission when full', () => {
    const s = newState();
    const l = only({ burst_per_second: 3, per_minute: 5 });
    applyCalls(s, t0, l, 1, 2);
    const out = applyCalls(s, t0 + 400, l, 1, 1);
    expect(out.counts).toMatchObject({ burst_per_second: 3, per_minute: 3 });
    // Full second: the next call passes when the first two leave it, 600 ms from now.
    expect(out.resetMs.burst_per_second).toBe(600);
    // Not full: the quota starts coming back when the first calls leave the minute.
    expect(out.resetMs.per_minute).toBe(59_600);
    expect(applyCalls(s, t0 + 999, l, 1, 1).admitted).toBe(0);
    expect(applyCalls(s, t0 + 1_000, l, 1, 1).admitted).toBe(1);
  });

  it('admits as many of a batch as fit and counts nothing refused; cost 0 only reads', () => {
    const s = newState();
    const l = only({ burst_per_second: 4, per_hour: 10 });
    expect(applyCalls(s, t0, l, 1, 7)).toMatchObject({ admitted: 4, changed: true, counts: { burst_per_second: 4, per_hour: 4, daily: 4 } });
    expect(applyCalls(s, t0, l, 1, 3)).toMatchObject({ admitted: 0, changed: false, counts: { per_hour: 4 } });
    expect(applyCalls(s, t0 + 5_000, l, 0, 1)).toMatchObject({ changed: false, counts: { burst_per_second: 0, per_hour: 4 } });
  });

  it('gives back a window whose calls all left, and ignores a clock that steps back', () => {
    const s = newState();
    const l = only({ burst_per_second: 2 });
    applyCalls(s, t0, l, 1, 2);
    expect(applyCalls(s, t0 - 5_000, l, 1, 1).admitted).toBe(0); // still t0 for this key
    const later = applyCalls(s, t0 + 7_200_000, l, 0, 1);
    expect(later.counts).toMatchObject({ burst_per_second: 0, per_minute: 0, per_hour: 0 });
    expect(later.resetMs.per_hour).toBe(WINDOW_MS.per_hour);
  });
});

describe('decide', () => {
  it('reports the tightest window when allowed: fewest remaining', () => {
    const d = decide(limits, state(true, { burst_per_second: 1, per_minute: 95, per_hour: 95, daily: 95 }));
    expect(d).toMatchObject({ allowed: true, window: 'per_minute', limit: 100, remaining: 5, resetSeconds: 30 });
    expect(d.retryAfterSeconds).toBeUndefined();
    expect(d.remainingByWindow).toEqual({ burst_per_second: 59, per_minute: 5, per_hour: 4_905, daily: 99_905 });
    expect(d.resetSecondsByWindow).toEqual({ burst_per_second: 1, per_minute: 30, per_hour: 1_800, daily: 43_200 });
    expect(d.limits).toBe(limits);
  });

  // Replaces "breaks a tie on remaining with the shortest window", the rule this issue removes.
  it('names the window that frees last when several are left at 0 by an admitted call', () => {
    const d = decide(limits, state(true, { burst_per_second: 60, per_minute: 100, per_hour: 160, daily: 160 }, { ...resetMs, per_minute: 24_200 }));
    expect(d).toMatchObject({ allowed: true, window: 'per_minute', remaining: 0, resetSeconds: 25 });
    const tied = decide({ burst_per_second: 10, per_minute: 10, per_hour: 10, daily: 10 }, state(true, { burst_per_second: 3, per_minute: 3, per_hour: 3, daily: 3 }));
    expect(tied.window).toBe('daily');
    expect(tied.resetSeconds).toBe(43_200);
  });

  it('names the full window that frees up last when refused, with Retry-After at least 1', () => {
    const d = decide(limits, state(false, { burst_per_second: 60, per_minute: 100, per_hour: 160, daily: 160 }));
    expect(d).toMatchObject({ allowed: false, window: 'per_minute', limit: 100, remaining: 0, retryAfterSeconds: 30 });
    const burst = decide(limits, state(false, { burst_per_second: 60, per_minute: 60, per_hour: 60, daily: 60 }));
    expect(burst).toMatchObject({ window: 'burst_per_second', retryAfterSeconds: 1, resetSeconds: 1 });
    // A full window that frees sooner than a longer, non-full one is still the one named.
    const soon = decide(limits, state(false, { burst_per_second: 60, per_minute: 99, per_hour: 99, daily: 99 }, { ...resetMs, burst_per_second: 1 }));
    expect(soon).toMatchObject({ window: 'burst_per_second', retryAfterSeconds: 1 });
  });
});
