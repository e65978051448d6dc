import { RATE_LIMIT_DEFAULTS, type RateLimit } from '@keyway/contracts';
import { decide, msUntilReset, type PerWindow, type WindowState } from './windows';

const limits: RateLimit = { ...RATE_LIMIT_DEFAULTS };
const resetMs: PerWindow<number> = { burst_per_second: 400, per_minute: 30_000, per_hour: 1_800_000, daily: 43_200_000 };
const state = (allowed: boolean, counts: PerWindow<number>): WindowState => ({ allowed, counts, resetMs });

describe('msUntilReset', () => {
  it('resets the daily window at UTC midnight, not 24 h after first use', () => {
    const t = Date.parse('2026-11-24T23:59:30.000Z');
    expect(msUntilReset(t, 'daily')).toBe(30_000);
    expect(msUntilReset(Date.parse('2026-11-25T00:00:00.000Z'), 'daily')).toBe(86_400_000);
  });

  it('aligns minutes and hours to the clock', () => {
    const t = Date.parse('2026-11-24T10:20:45.250Z');
    expect(msUntilReset(t, 'burst_per_second')).toBe(750);
    expect(msUntilReset(t, 'per_minute')).toBe(14_750);
    expect(msUntilReset(t, 'per_hour')).toBe(39 * 60_000 + 14_750);
  });
});

describe('decide', () => {
  it('reports the tightest window when allowed: fewest remaining', () => {
    const d = decide(limits, state(true, { burst_per_second: 1, per_minute: 95, per_hour: 95, daily: 95 }));
    expect(d).toMatchObject({ allowed: true, window: 'per_minute', limit: 100, remaining: 5, resetSeconds: 30 });
    expect(d.retryAfterSeconds).toBeUndefined();
    expect(d.remainingByWindow).toEqual({ burst_per_second: 59, per_minute: 5, per_hour: 4_905, daily: 99_905 });
  });

  it('breaks a tie on remaining with the shortest window', () => {
    const d = decide({ burst_per_second: 10, per_minute: 10, per_hour: 10, daily: 10 }, state(true, { burst_per_second: 3, per_minute: 3, per_hour: 3, daily: 3 }));
    expect(d.window).toBe('burst_per_second');
    expect(d.resetSeconds).toBe(1);
  });

  it('names the full window that frees up last when refused, with Retry-After at least 1', () => {
    const d = decide(limits, state(false, { burst_per_second: 60, per_minute: 100, per_hour: 160, daily: 160 }));
    expect(d).toMatchObject({ allowed: false, window: 'per_minute', limit: 100, remaining: 0, retryAfterSeconds: 30 });
    const burst = decide(limits, state(false, { burst_per_second: 60, per_minute: 60, per_hour: 60, daily: 60 }));
    expect(burst).toMatchObject({ window: 'burst_per_second', retryAfterSeconds: 1, resetSeconds: 1 });
  });
});
