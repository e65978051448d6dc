import { RATE_LIMIT_DEFAULTS, type RateLimit } from '@keyway/contracts';
import { rateLimitedError, rateLimitHeaders } from './rate-limit.http';
import { decide, WINDOWS, type PerWindow } from './windows';

const limits: RateLimit = { ...RATE_LIMIT_DEFAULTS };
const resetMs: PerWindow<number> = { burst_per_second: 400, per_minute: 24_200, per_hour: 1_800_000, daily: 43_200_000 };

/** A Structured Field list of items `"name";k=v;k=v` (RFC 9651), as a client would read it. */
function parseList(value: string): Array<{ name: string; params: Record<string, number> }> {
  return value.split(/\s*,\s*/).map((member) => {
    const [item, ...params] = member.split(';');
    expect(item).toMatch(/^"[a-z_]+"$/);
    return { name: JSON.parse(item!) as string, params: Object.fromEntries(params.map((p) => p.split('=')).map(([k, v]) => [k, Number(v)])) };
  });
}

describe('rateLimitHeaders', () => {
  it('sends the draft\'s RateLimit-Policy and RateLimit lists, one item per window, beside the three older fields', () => {
    const d = decide(limits, { allowed: true, counts: { burst_per_second: 1, per_minute: 1, per_hour: 1, daily: 1 }, resetMs });
    const h = rateLimitHeaders(d);
    expect(h['RateLimit-Policy']).toBe('"burst_per_second";q=60;w=1, "per_minute";q=100;w=60, "per_hour";q=5000;w=3600, "daily";q=100000;w=86400');
    expect(h.RateLimit).toBe('"burst_per_second";r=59;t=1, "per_minute";r=99;t=25, "per_hour";r=4999;t=1800, "daily";r=99999;t=43200');
    expect(parseList(h.RateLimit!).map((i) => i.name)).toEqual(WINDOWS);
    expect(parseList(h['RateLimit-Policy']!).map((i) => i.name)).toEqual(WINDOWS);
    expect(h).toMatchObject({ 'RateLimit-Limit': '60', 'RateLimit-Remaining': '59', 'RateLimit-Reset': '1' });
    expect(h['Retry-After']).toBeUndefined();
  });

  it('follows a key\'s own limits in the policy', () => {
    const own = { burst_per_second: 5, per_minute: 7, per_hour: 9, daily: 11 };
    const h = rateLimitHeaders(decide(own, { allowed: true, counts: { burst_per_second: 0, per_minute: 0, per_hour: 0, daily: 0 }, resetMs }));
    expect(parseList(h['RateLimit-Policy']!).map((i) => i.params.q)).toEqual([5, 7, 9, 11]);
  });

  it('names the window that frees last when an admitted call leaves several at 0: RateLimit-Reset is the real wait', () => {
    const d = decide(limits, { allowed: true, counts: { burst_per_second: 60, per_minute: 100, per_hour: 160, daily: 160 }, resetMs });
    const h = rateLimitHeaders(d);
    expect(h).toMatchObject({ 'RateLimit-Limit': '100', 'RateLimit-Remaining': '0', 'RateLimit-Reset': '25' });
    const items = parseList(h.RateLimit!);
    expect(items[0]).toEqual({ name: 'burst_per_second', params: { r: 0, t: 1 } });
    expect(items[1]).toEqual({ name: 'per_minute', params: { r: 0, t: 25 } });
  });

  it('on a refusal: Retry-After is the latest t of the full windows, and the 429 body keeps its shape', () => {
    const d = decide(limits, { allowed: false, counts: { burst_per_second: 60, per_minute: 100, per_hour: 160, daily: 160 }, resetMs });
    const h = rateLimitHeaders(d);
    expect(h['Retry-After']).toBe('25');
    const full = parseList(h.RateLimit!).filter((i) => i.params.r === 0);
    expect(full.map((i) => i.name)).toEqual(['burst_per_second', 'per_minute']);
    for (const i of full) expect(Number(h['Retry-After'])).toBeGreaterThanOrEqual(i.params.t!);
    expect(rateLimitedError(d).toBody()).toEqual({
      error: expect.any(String),
      code: 'rate_limited',
      window: 'per_minute',
      limit: 100,
      remaining: 0,
      retry_after: 25,
    });
  });
});
