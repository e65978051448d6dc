import type { RateLimit, RateLimitWindow } from '@keyway/contracts';

/**
 * The windows, shortest first: the order of every per-window array here, of the Redis script's
 * arguments and replies, and of the `RateLimit-Policy` and `RateLimit` header lists.
 */
export const WINDOWS: readonly RateLimitWindow[] = ['burst_per_second', 'per_minute', 'per_hour', 'daily'];

/** Window lengths. The daily one is the UTC day (a quota that resets at 00:00 UTC), not a sliding 24 h. */
export const WINDOW_MS: Readonly<Record<RateLimitWindow, number>> = {
  burst_per_second: 1_000,
  per_minute: 60_000,
  per_hour: 3_600_000,
  daily: 86_400_000,
};

export type SlidingWindow = Exclude<RateLimitWindow, 'daily'>;
export const SLIDING: readonly SlidingWindow[] = ['burst_per_second', 'per_minute', 'per_hour'];

/**
 * The stated error: in any interval shorter than a sliding window, at most limit × (1 + this)
 * calls are admitted. Zero: the error is all on the other side (see BUCKETS), and property tests
 * hold both stores to it.
 */
export const OVER_ADMISSION_ERROR = 0;

/**
 * Buckets per sliding window: 20 each, i.e. 50 ms for the second, 3 s for the minute, 3 min for
 * the hour.
 *
 * The algorithm (the same in memory and in the Redis script, which is generated from these
 * constants): each window keeps its last N+1 buckets, each with the number of calls counted in
 * it and the time of the LAST of them. A bucket counts, in full, for as long as its last call is
 * inside the window (`last > now - W`). Every call inside the window is in such a bucket, so the
 * count a decision sees is never below the true number of calls in the last W ms:
 *
 *   in any interval shorter than W, at most `limit` calls are admitted: the error is 0 on the
 *   side of admitting too many (OVER_ADMISSION_ERROR), and no boundary lets a second allowance
 *   through;
 *
 *   the price is on the other side: a call may stay counted up to one bucket (W/20) longer than
 *   W, when later calls of its bucket hold it. A burst made at one moment frees exactly W after
 *   it; a client pacing exactly at its limit gets about 96 % of its calls through (one refusal in
 *   25), one pacing at 95 % of it or less is never refused. `npm run bench -- rate-limit` prints
 *   these, beside today's fixed windows and the usual two-counter approximation.
 *
 * Why not that approximation (previous window × overlap + current): it assumes the previous
 * window's calls were spread evenly; a client that puts them at its very end gets them weighted
 * away while they are still inside the window, and 1.98 × the limit passes in one rolling window
 * (the bench's "burst at a boundary"). Any scheme that forgets when calls happened inside a bucket
 * shares this, unless it counts the bucket in full while any of its calls may still be inside:
 * what this does. More buckets would cost Redis more per call, since the state is read and
 * written whole: measured in Redis CPU per call on this machine, 20 buckets take about 15 µs
 * (the fixed-window script it replaced: 14), 60 took 32 before buckets were packed into one
 * number each.
 */
export const BUCKETS: Readonly<Record<SlidingWindow, number>> = {
  burst_per_second: 20,
  per_minute: 20,
  per_hour: 20,
};

export type PerWindow<T> = Record<RateLimitWindow, T>;
export type Clock = () => number;

const DAY_MS = WINDOW_MS.daily;

/** Milliseconds until the next 00:00 UTC: always in (0, 24 h]. Unix time has no leap seconds. */
export function msUntilUtcMidnight(nowMs: number): number {
  return DAY_MS - (nowMs % DAY_MS);
}

/**
 * A bucket is one number: count × SLOT_SHIFT + (time of its last call − the bucket's start), so
 * that reading and writing a key's state (what a call costs Redis most) moves half as many
 * numbers. Exact in a double: the offset is below the longest bucket (3 min = 180,000 ms < 2^18)
 * and a count below 2^34.
 */
export const SLOT_SHIFT = 262_144;

/**
 * The state of one key, as one array of numbers (a Float64Array in memory, a MessagePack array in
 * Redis, the same layout in both): [UTC day, calls that day, time of the latest call], then per
 * sliding window [newest bucket, oldest bucket still counted, calls counted, N+1 buckets], the
 * bucket i in slot i % (N+1). Invariant: the slots of buckets outside [oldest, newest] are zero,
 * and every non-empty bucket in it still counts (buckets are in time order, so once the oldest
 * one counts, all later ones do): the count is a running total and a call costs O(1) amortised,
 * each bucket being given back once.
 */
export const LAYOUT = (() => {
  let at = 3;
  const windows = SLIDING.map((w) => {
    const slots = BUCKETS[w] + 1;
    const L = { window: w, size: WINDOW_MS[w], bucket: WINDOW_MS[w] / BUCKETS[w], slots, head: at, tail: at + 1, total: at + 2, buckets: at + 3 };
    if (!Number.isInteger(L.bucket) || L.bucket >= SLOT_SHIFT) throw new Error(`a ${w} bucket of ${L.bucket} ms does not fit a slot`);
    at += 3 + slots;
    return L;
  });
  return { day: 0, dayCount: 1, latest: 2, windows, size: at };
})();
type Layout = (typeof LAYOUT.windows)[number];

/** What a store answers: each window's count (after the call) and when it next frees. */
export interface WindowState {
  allowed: boolean;
  counts: PerWindow<number>;
  /**
   * Per window, ms until it would admit the next call of the same cost when it has no room, else
   * ms until it gives back its first counted call (the whole window when nothing is counted): in
   * both cases, the time within which the available quota cannot grow. Daily: until 00:00 UTC.
   */
  resetMs: PerWindow<number>;
}

export interface Outcome {
  /** How many of the `n` calls were admitted (the first ones). */
  admitted: number;
  /** Counts after the admitted calls. */
  counts: PerWindow<number>;
  resetMs: PerWindow<number>;
  /** Whether calls were counted (else the state only got tidied and need not be stored). */
  changed: boolean;
}

/** An all-zero state: day 0 and bucket 0 are long past, so the first call starts afresh. */
export function newState(): Float64Array {
  return new Float64Array(LAYOUT.size);
}

/**
 * Counts up to `n` calls of `cost` each (0: only reads) at `now` against `limits`, admitting as
 * many as every window has room for, first come first served, exactly as the same calls one
 * after another would. The Redis script (redis-store.ts) is this function in Lua, line for line.
 */
export function applyCalls(s: Float64Array, nowMs: number, limits: RateLimit, cost: number, n: number): Outcome {
  // A clock that steps back (NTP, another replica's clock in tests) must not un-count calls.
  const now = Math.max(nowMs, s[LAYOUT.latest]!);
  const day = Math.floor(now / DAY_MS);
  if (s[LAYOUT.day] !== day) {
    s[LAYOUT.day] = day;
    s[LAYOUT.dayCount] = 0;
  }
  const counts = {} as PerWindow<number>;
  let room = Number.POSITIVE_INFINITY;
  for (const L of LAYOUT.windows) {
    counts[L.window] = slide(s, L, now);
    if (cost > 0) room = Math.min(room, Math.floor((limits[L.window] - counts[L.window]) / cost));
  }
  counts.daily = s[LAYOUT.dayCount]!;
  if (cost > 0) room = Math.min(room, Math.floor((limits.daily - counts.daily) / cost));

  const admitted = cost > 0 ? Math.max(0, Math.min(n, room)) : n;
  const taken = cost > 0 ? admitted * cost : 0;
  if (taken > 0) {
    for (const L of LAYOUT.windows) {
      const head = s[L.head]!;
      const at = L.buckets + (head % L.slots);
      s[at] = (Math.floor(s[at]! / SLOT_SHIFT) + taken) * SLOT_SHIFT + (now - head * L.bucket);
      s[L.total] = s[L.total]! + taken;
      counts[L.window] += taken;
    }
    s[LAYOUT.dayCount] = s[LAYOUT.dayCount]! + taken;
    counts.daily += taken;
    s[LAYOUT.latest] = now;
  }

  const next = Math.max(cost, 1);
  const resetMs = {} as PerWindow<number>;
  for (const L of LAYOUT.windows) resetMs[L.window] = freesIn(s, L, now, counts[L.window] + next - limits[L.window]);
  resetMs.daily = msUntilUtcMidnight(now);
  return { admitted, counts, resetMs, changed: taken > 0 };
}

/** Gives back the buckets that left the window, moves to `now`'s bucket; returns the count. */
function slide(s: Float64Array, L: Layout, now: number): number {
  const from = now - L.size;
  let head = s[L.head]!;
  let tail = s[L.tail]!;
  let total = s[L.total]!;
  while (tail <= head) {
    const at = L.buckets + (tail % L.slots);
    const v = s[at]!;
    const count = Math.floor(v / SLOT_SHIFT);
    if (count > 0 && tail * L.bucket + (v % SLOT_SHIFT) > from) break;
    total -= count;
    s[at] = 0;
    tail++;
  }
  // The buckets skipped to are zero: their slots last held buckets older than the window.
  const j = Math.floor(now / L.bucket);
  if (j > head) head = j;
  if (total === 0) tail = head;
  s[L.head] = head;
  s[L.tail] = tail;
  s[L.total] = total;
  return total;
}

/**
 * Ms until the window has given back `excess` calls (at least 1), oldest bucket first; the whole
 * window when it holds nothing, or could never give back enough.
 */
function freesIn(s: Float64Array, L: Layout, now: number, excess: number): number {
  const needed = Math.max(1, excess);
  const head = s[L.head]!;
  let freed = 0;
  for (let i = s[L.tail]!; i <= head; i++) {
    const v = s[L.buckets + (i % L.slots)]!;
    freed += Math.floor(v / SLOT_SHIFT);
    if (freed >= needed) return i * L.bucket + (v % SLOT_SHIFT) + L.size - now;
  }
  return L.size;
}

export interface RateLimitDecision {
  allowed: boolean;
  /** The limit of `window`. */
  limit: number;
  /** What remains in `window` after this call. */
  remaining: number;
  /** Seconds (at least 1) until `window` frees: see `WindowState.resetMs`. */
  resetSeconds: number;
  /**
   * The window that refused; when allowed, the tightest: fewest remaining, and among those the
   * one that frees last (two windows at 0 mean the next call waits for the later one).
   */
  window: RateLimitWindow;
  /** Only when refused: seconds until a retry can succeed (at least 1). */
  retryAfterSeconds?: number;
  remainingByWindow: PerWindow<number>;
  resetSecondsByWindow: PerWindow<number>;
  /** The limits this decision was made under (the `RateLimit-Policy` header lists them). */
  limits: RateLimit;
}

const seconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000));

/**
 * Turns a store's answer into the decision the edge reports. The window named is, among those
 * with the fewest calls left (when refused: among the full ones), the one that frees up last:
 * when several are spent, retrying as a shorter one frees would still be refused by the longer
 * one, so `RateLimit-Reset` and `Retry-After` must be the later time.
 */
export function decide(limits: RateLimit, state: WindowState): RateLimitDecision {
  const remainingByWindow = {} as PerWindow<number>;
  const resetSecondsByWindow = {} as PerWindow<number>;
  for (const w of WINDOWS) {
    remainingByWindow[w] = Math.max(0, limits[w] - state.counts[w]);
    resetSecondsByWindow[w] = seconds(state.resetMs[w]);
  }

  let window: RateLimitWindow | undefined;
  for (const w of WINDOWS) {
    if (!state.allowed && state.counts[w] < limits[w]) continue;
    if (
      window === undefined ||
      remainingByWindow[w] < remainingByWindow[window] ||
      (remainingByWindow[w] === remainingByWindow[window] && state.resetMs[w] > state.resetMs[window])
    ) {
      window = w;
    }
  }
  // Refused with no window full can only come from a cost above a limit: name the smallest.
  if (window === undefined) for (const w of WINDOWS) if (window === undefined || limits[w] < limits[window]) window = w;
  const named = window!;

  const decision: RateLimitDecision = {
    allowed: state.allowed,
    limit: limits[named],
    remaining: remainingByWindow[named],
    resetSeconds: resetSecondsByWindow[named],
    window: named,
    remainingByWindow,
    resetSecondsByWindow,
    limits,
  };
  if (!state.allowed) decision.retryAfterSeconds = decision.resetSeconds;
  return decision;
}
