import type { RateLimit } from '@keyway/contracts';
import { applyCalls, LAYOUT, newState, WINDOW_MS, type Clock, type WindowState } from './windows';

/**
 * Per-process counters: the store when `REDIS_URL` is unset, and the insurance store while Redis
 * does not answer. The same algorithm as the Redis script (`applyCalls`, windows.ts), on one
 * Float64Array per key with the same layout.
 *
 * It replaced rate-limiter-flexible's RateLimiterMemory, which counts fixed windows only (a
 * counter per window that expires as a whole), the very thing that let twice a limit through
 * across a boundary; a sliding window needs to know when inside the window the calls came.
 *
 * Synchronous: a decision needs no I/O, so there is nothing to refund and no window between
 * checking and counting in which another call could slip in.
 */
export class MemoryWindowStore {
  /** Keys used within the hour: the whole state (75 numbers, 600 bytes). */
  private readonly states = new Map<string, Float64Array>();
  /**
   * Keys quiet for an hour but used today: only their daily count, kept until 00:00 UTC (a few
   * dozen bytes instead of the whole state, for what may be most keys of a busy day).
   */
  private quietToday = new Map<string, number>();
  private quietDay = 0;
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly clock: Clock = Date.now) {
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }

  apply(keyId: string, limits: RateLimit, cost: number): WindowState {
    const now = this.clock();
    let state = this.states.get(keyId);
    if (state === undefined) {
      state = newState();
      const today = Math.floor(now / WINDOW_MS.daily);
      const daily = this.quietDay === today ? this.quietToday.get(keyId) : undefined;
      if (daily !== undefined) {
        state[LAYOUT.day] = today;
        state[LAYOUT.dayCount] = daily;
      }
      if (cost > 0) {
        this.states.set(keyId, state);
        this.quietToday.delete(keyId);
      }
    }
    const out = applyCalls(state, now, limits, cost, 1);
    return { allowed: out.admitted === 1, counts: out.counts, resetMs: out.resetMs };
  }

  /** Moves keys no sliding window counts any more to `quietToday`, or forgets them. */
  sweep(): void {
    const now = this.clock();
    const today = Math.floor(now / WINDOW_MS.daily);
    if (this.quietDay !== today) {
      this.quietToday = new Map();
      this.quietDay = today;
    }
    for (const [keyId, s] of this.states) {
      if (s[LAYOUT.latest]! > now - WINDOW_MS.per_hour) continue;
      this.states.delete(keyId);
      if (s[LAYOUT.day] === today && s[LAYOUT.dayCount]! > 0) this.quietToday.set(keyId, s[LAYOUT.dayCount]!);
    }
  }

  /** Keys held in full, and keys held by their daily count only (tests). */
  get size(): { active: number; quiet: number } {
    return { active: this.states.size, quiet: this.quietToday.size };
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
