import { KeywayError } from '@keyway/contracts';
import type { RateLimitDecision } from './windows';

/**
 * The headers every `/v1` answer carries (the tightest window), plus `Retry-After` on a refusal.
 * Names as in the IETF RateLimit header fields draft that the design follows.
 */
export function rateLimitHeaders(decision: RateLimitDecision): Record<string, string> {
  const headers: Record<string, string> = {
    'RateLimit-Limit': String(decision.limit),
    'RateLimit-Remaining': String(decision.remaining),
    'RateLimit-Reset': String(decision.resetSeconds),
  };
  if (!decision.allowed) headers['Retry-After'] = String(decision.retryAfterSeconds ?? decision.resetSeconds);
  return headers;
}

/**
 * The error for a refused call; its body is the documented
 * `{error, code: "rate_limited", window, limit, remaining, retry_after}`. The edge maps the code to 429.
 */
export function rateLimitedError(decision: RateLimitDecision): KeywayError {
  const retryAfter = decision.retryAfterSeconds ?? decision.resetSeconds;
  return new KeywayError('rate_limited', `Rate limit exceeded for the ${decision.window} window; retry in ${retryAfter} s`, {
    window: decision.window,
    limit: decision.limit,
    remaining: decision.remaining,
    retry_after: retryAfter,
  });
}
