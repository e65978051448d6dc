import type { RateLimit, RateLimitWindow } from '@keyway/contracts';

/**
 * The windows, shortest first: the order breaks ties ("ties → shortest") and is the order of the
 * keys and arguments of the Redis script.
 */
export const WINDOWS: readonly RateLimitWindow[] = ['burst_per_second', 'per_minute', 'per_hour', 'daily'];

/**
 * Fixed windows aligned to the clock (UTC): a second, a minute, an hour, a day. Unix time has no
 * leap seconds and its epoch is a UTC midnight, so `now % day` is the time since UTC midnight and
 * the daily window resets at 00:00 UTC as the design says.
 */
export const WINDOW_MS: Readonly<Record<RateLimitWindow, number>> = {
  burst_per_second: 1_000,
  per_minute: 60_000,
  per_hour: 3_600_000,
  daily: 86_400_000,
};

export type PerWindow<T> = Record<RateLimitWindow, T>;

/** Milliseconds until the window that holds `nowMs` ends: always in (0, size]. */
export function msUntilReset(nowMs: number, window: RateLimitWindow): number {
  const size = WINDOW_MS[window];
  return size - (nowMs % size);
}

/** What a store answers: the count of each window after the call, and when each window ends. */
export interface WindowState {
  allowed: boolean;
  counts: PerWindow<number>;
  resetMs: PerWindow<number>;
}

export interface RateLimitDecision {
  allowed: boolean;
  /** The limit of `window`. */
  limit: number;
  /** What remains in `window` after this call. */
  remaining: number;
  /** Seconds until `window` resets (at least 1). */
  resetSeconds: number;
  /** The window that refused; when allowed, the tightest (fewest remaining, ties → shortest). */
  window: RateLimitWindow;
  /** Only when refused: seconds until a retry can succeed (at least 1). */
  retryAfterSeconds?: number;
  remainingByWindow: PerWindow<number>;
}

const seconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000));

/**
 * Turns a store's answer into the decision the edge reports. A refused call names, among the
 * windows that are full, the one that frees up last: retrying when a shorter full window resets
 * would still be refused by the longer one, so `Retry-After` must be the later reset.
 */
export function decide(limits: RateLimit, state: WindowState): RateLimitDecision {
  const remainingByWindow = {} as PerWindow<number>;
  for (const w of WINDOWS) remainingByWindow[w] = Math.max(0, limits[w] - state.counts[w]);

  let window: RateLimitWindow = WINDOWS[0] as RateLimitWindow;
  if (!state.allowed) {
    let found = false;
    for (const w of WINDOWS) {
      if (state.counts[w] < limits[w]) continue;
      if (!found || state.resetMs[w] > state.resetMs[window]) window = w;
      found = true;
    }
  } else {
    for (const w of WINDOWS) if (remainingByWindow[w] < remainingByWindow[window]) window = w;
  }

  const resetSeconds = seconds(state.resetMs[window]);
  const decision: RateLimitDecision = {
    allowed: state.allowed,
    limit: limits[window],
    remaining: remainingByWindow[window],
    resetSeconds,
    window,
    remainingByWindow,
  };
  if (!state.allowed) decision.retryAfterSeconds = resetSeconds;
  return decision;
}
