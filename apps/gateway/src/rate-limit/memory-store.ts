import type { RateLimit, RateLimitWindow } from '@keyway/contracts';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { msUntilReset, WINDOW_MS, WINDOWS, type PerWindow, type WindowState } from './windows';

/** The highest limit a key may have (contracts: RateLimitOverride). */
const MAX_POINTS = 1_000_000_000;

/**
 * Per-process counters: the store when `REDIS_URL` is unset, and the insurance store while Redis
 * does not answer. One rate-limiter-flexible RateLimiterMemory per window serves as the counter;
 * it is built with the highest possible `points` because every key brings its own limits, which
 * are compared here. Windows are aligned to the clock like the Redis ones (a new counter lives
 * until the end of its window: `customDuration`).
 *
 * All or nothing: every window is counted first, and if one is over its limit the call is given
 * back to all of them. Counting first cannot admit too many (a call is admitted only when each
 * window's count, which includes it, is within the limit); a concurrent call may at worst be
 * refused while a refused call's refund is still pending in the same tick.
 */
export class MemoryWindowStore {
  private readonly limiters: PerWindow<RateLimiterMemory>;

  constructor(keyPrefix: string) {
    const limiters = {} as PerWindow<RateLimiterMemory>;
    for (const w of WINDOWS) {
      limiters[w] = new RateLimiterMemory({ keyPrefix: `${keyPrefix}mem:${w}`, points: MAX_POINTS, duration: WINDOW_MS[w] / 1000 });
    }
    this.limiters = limiters;
  }

  private options(window: RateLimitWindow, nowMs: number): { customDuration: number } {
    return { customDuration: msUntilReset(nowMs, window) / 1000 };
  }

  async apply(keyId: string, limits: RateLimit, cost: number): Promise<WindowState> {
    const now = Date.now();
    if (cost === 0) return this.read(keyId, now);

    const taken = await Promise.all(WINDOWS.map((w) => this.limiters[w].penalty(keyId, cost, this.options(w, now))));
    const allowed = WINDOWS.every((w, i) => (taken[i]?.consumedPoints ?? 0) <= limits[w]);
    if (!allowed) {
      await Promise.all(WINDOWS.map((w) => this.limiters[w].reward(keyId, cost, this.options(w, now))));
    }
    const counts = {} as PerWindow<number>;
    const resetMs = {} as PerWindow<number>;
    WINDOWS.forEach((w, i) => {
      const res = taken[i];
      counts[w] = (res?.consumedPoints ?? 0) - (allowed ? 0 : cost);
      resetMs[w] = res && res.msBeforeNext > 0 ? res.msBeforeNext : msUntilReset(now, w);
    });
    return { allowed, counts, resetMs };
  }

  private async read(keyId: string, now: number): Promise<WindowState> {
    const found = await Promise.all(WINDOWS.map((w) => this.limiters[w].get(keyId)));
    const counts = {} as PerWindow<number>;
    const resetMs = {} as PerWindow<number>;
    WINDOWS.forEach((w, i) => {
      const res = found[i];
      const live = res && res.msBeforeNext > 0;
      counts[w] = live ? res.consumedPoints : 0;
      resetMs[w] = live ? res.msBeforeNext : msUntilReset(now, w);
    });
    return { allowed: true, counts, resetMs };
  }
}
