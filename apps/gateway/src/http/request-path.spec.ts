import { WhoAmI, type RateLimit, type VerificationRecord } from '@keyway/contracts';
import { toCachedKey } from '../auth/verification-cache';
import type { RateLimitDecision } from '../rate-limit';
import { whoamiJson, type Caller } from './request-path';

const LIMITS: RateLimit = { burst_per_second: 60, per_minute: 100, per_hour: 5_000, daily: 100_000 };

function record(over: Partial<VerificationRecord> = {}): VerificationRecord {
  return {
    key_id: 'key_aaaaaaaaaaaaaaaaaaaa',
    prefix: 'kw_live_abcdefgh',
    tenant_id: 'ten_bbbbbbbbbbbbbbbbbbbb',
    hash: 'x'.repeat(64),
    status: 'active',
    environment: 'live',
    scopes: ['contacts:read'],
    rate_limit: LIMITS,
    expires_at: null,
    valid_until: null,
    siblings: [],
    ...over,
  } as VerificationRecord;
}

function caller(rec: VerificationRecord, remaining: RateLimitDecision['remainingByWindow'], key = toCachedKey(rec)): Caller {
  return { key, decision: { remainingByWindow: remaining } as RateLimitDecision };
}

/** The answer as an object serialised whole, which is what whoami answered before whoamiJson. */
function serialisedWhole(rec: VerificationRecord, remaining: RateLimitDecision['remainingByWindow']): string {
  return JSON.stringify({
    api_key_id: rec.key_id,
    prefix: rec.prefix,
    tenant_id: rec.tenant_id,
    scopes: rec.scopes,
    environment: rec.environment,
    rate_limit: rec.rate_limit,
    expires_at: rec.expires_at,
    remaining,
  });
}

describe('whoamiJson', () => {
  const left = { burst_per_second: 59, per_minute: 99, per_hour: 4_999, daily: 99_999 };

  it('answers the bytes of the whole object serialised, for keys of every shape', () => {
    const records = [
      record(),
      record({ environment: 'test', prefix: 'kw_test_abcdefgh', scopes: ['contacts:write', 'keys:read', 'audit:read'], expires_at: '2030-01-02T03:04:05.000Z' }),
      record({ scopes: [], rate_limit: { burst_per_second: 1e9, per_minute: 1e9, per_hour: 1e9, daily: 1e9 } }),
      record({ key_id: 'key_with"quote\\and\u2028', prefix: 'kw_live_zzzzzzzz' }),
    ];
    for (const rec of records) {
      const c = caller(rec, left);
      const text = whoamiJson(c);
      expect(text).toBe(serialisedWhole(rec, left));
      expect(WhoAmI.parse(JSON.parse(text))).toEqual(JSON.parse(text));
      // Served from the key's cached part on the next call: still the same bytes.
      expect(whoamiJson(c)).toBe(text);
    }
  });

  it('says what remains now on every call, the key part unchanged', () => {
    const rec = record();
    const key = toCachedKey(rec);
    const first = whoamiJson(caller(rec, left, key));
    const later = { burst_per_second: 0, per_minute: 41, per_hour: 4_941, daily: 99_941 };
    const second = whoamiJson(caller(rec, later, key));
    expect(JSON.parse(first).remaining).toEqual(left);
    expect(JSON.parse(second).remaining).toEqual(later);
    expect(second).toBe(serialisedWhole(rec, later));
  });

  it('past the keys it keeps a part for, every key still answers its own', () => {
    const callers = Array.from({ length: 2_500 }, (_, i) => caller(record({ key_id: `key_${String(i).padStart(20, '0')}` }), left));
    for (const round of [0, 1]) {
      for (const c of round === 0 ? callers : [...callers].reverse()) expect(JSON.parse(whoamiJson(c)).api_key_id).toBe(c.key.record.key_id);
    }
  });

  it('a key verified again (new scopes, an expiry) answers its new record, not the first one kept', () => {
    const before = record();
    expect(JSON.parse(whoamiJson(caller(before, left))).scopes).toEqual(['contacts:read']);
    const after = record({ scopes: ['contacts:write'], expires_at: '2031-05-06T07:08:09.000Z', rate_limit: { ...LIMITS, per_minute: 10 } });
    const text = whoamiJson(caller(after, left));
    expect(text).toBe(serialisedWhole(after, left));
    expect(JSON.parse(text)).toMatchObject({ scopes: ['contacts:write'], expires_at: '2031-05-06T07:08:09.000Z', rate_limit: { per_minute: 10 } });
  });
});
