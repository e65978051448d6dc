import { KeywayError, type RateLimit } from '@keyway/contracts';
import { fastCounter } from '@keyway/runtime';
import { WINDOW_MS, WINDOWS, type RateLimitDecision } from './windows';

/**
 * `RateLimit-Policy` of a key's limits, one item per window named as everywhere else in the API
 * (the 429 body's `window`, whoami's `remaining`): `"burst_per_second";q=60;w=1, ...`. The daily
 * item's `w` is the day; that quota resets at 00:00 UTC, which its `t` in `RateLimit` tells.
 * Cached per limits object: a cached key hands the same one to every request.
 */
const policies = new WeakMap<RateLimit, string>();
function policyOf(limits: RateLimit): string {
  let policy = policies.get(limits);
  if (policy === undefined) {
    policy = WINDOWS.map((w) => `"${w}";q=${limits[w]};w=${WINDOW_MS[w] / 1000}`).join(', ');
    policies.set(limits, policy);
  }
  return policy;
}

/**
 * The headers every `/v1` answer carries, plus `Retry-After` on a refusal:
 *
 * - `RateLimit-Limit`, `-Remaining`, `-Reset` (the older drafts' three fields, which clients use):
 *   the tightest window, i.e. the fewest calls left, and among windows with as few the one that
 *   frees last (`decide`), so that `Remaining: 0` comes with the time the next call really waits.
 * - `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers-10/11, Structured
 *   Field lists, one item per window, shortest first): `q` the limit and `w` the window in
 *   seconds; `r` the calls left and `t` the effective window: seconds within which no more than
 *   `r` calls can pass. The windows slide, so quota comes back call by call, not all at once:
 *   `t` is when the window gives back its first counted call, or, at `r=0`, when it admits the
 *   next call again; daily: until 00:00 UTC.
 *
 * `Retry-After` is the latest `t` among the full windows, never earlier than any of them, as the
 * draft asks.
 */
export function rateLimitHeaders(decision: RateLimitDecision): Record<string, string> {
  const r = decision.remainingByWindow;
  const t = decision.resetSecondsByWindow;
  const headers: Record<string, string> = {
    'RateLimit-Limit': String(decision.limit),
    'RateLimit-Remaining': String(decision.remaining),
    'RateLimit-Reset': String(decision.resetSeconds),
    'RateLimit-Policy': policyOf(decision.limits),
    RateLimit:
      `"burst_per_second";r=${r.burst_per_second};t=${t.burst_per_second}, "per_minute";r=${r.per_minute};t=${t.per_minute}, ` +
      `"per_hour";r=${r.per_hour};t=${t.per_hour}, "daily";r=${r.daily};t=${t.daily}`,
  };
  if (!decision.allowed) headers['Retry-After'] = String(decision.retryAfterSeconds ?? decision.resetSeconds);
  return headers;
}

/**
 * The error for a refused call; its body is the documented
 * `{error, code: "rate_limited", window, limit, remaining, retry_after}`. The edge maps the code to 429.
 */
const rateLimited = () => fastCounter('keyway_rate_limited_total', 'Requests refused 429 by a key\'s limits, by the window that was full');

export function rateLimitedError(decision: RateLimitDecision): KeywayError {
  // The window names are the four of WINDOWS: a bounded label.
  rateLimited().series({ window: decision.window }).n += 1;
  const retryAfter = decision.retryAfterSeconds ?? decision.resetSeconds;
  return new KeywayError('rate_limited', `Rate limit exceeded for the ${decision.window} window; retry in ${retryAfter} s`, {
    window: decision.window,
    limit: decision.limit,
    remaining: decision.remaining,
    retry_after: retryAfter,
  });
}
