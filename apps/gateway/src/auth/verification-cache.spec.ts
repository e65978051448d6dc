import { hashKey, mintKey, type VerificationRecord } from '@keyway/contracts';
import { toCachedKey, VerificationCache } from './verification-cache';

const record = (over: Partial<VerificationRecord> = {}): VerificationRecord => {
  const m = mintKey('live');
  return {
    key_id: 'key_1',
    tenant_id: 'ten_1',
    prefix: m.prefix,
    environment: 'live',
    scopes: [],
    status: 'active',
    expires_at: null,
    valid_until: null,
    rate_limit: { burst_per_second: 1, per_minute: 1, per_hour: 1, daily: 1 },
    hash: hashKey(m.key),
    ...over,
    siblings: over.siblings ?? [],
  };
};

describe('VerificationCache', () => {
  it('does not store a fetch that started before an invalidation', () => {
    const c = new VerificationCache(60_000, 5_000, 10);
    const epoch = c.epoch;
    c.drop(['aaaaaaaa']);
    expect(c.set('aaaaaaaa', toCachedKey(record()), epoch, 0)).toBe(false);
    expect(c.get('aaaaaaaa', 1)).toBeUndefined();
    expect(c.set('aaaaaaaa', toCachedKey(record()), c.epoch, 0)).toBe(true);
    expect(c.get('aaaaaaaa', 1)).toBeDefined();
  });

  it('expires positive and negative entries on their own TTLs', () => {
    const c = new VerificationCache(1_000, 100, 10);
    c.set('pos00000', toCachedKey(record()), c.epoch, 0);
    c.set('neg00000', null, c.epoch, 0);
    expect(c.get('neg00000', 50)).toBeNull();
    expect(c.get('neg00000', 100)).toBeUndefined();
    expect(c.get('pos00000', 999)).toBeDefined();
    expect(c.get('pos00000', 1_000)).toBeUndefined();
  });

  it('stays within its bound, evicting the oldest insertion first', () => {
    const c = new VerificationCache(60_000, 5_000, 3);
    for (const id of ['a', 'b', 'c', 'd']) c.set(id, null, c.epoch, 0);
    expect(c.size).toBe(3);
    expect(c.get('a', 1)).toBeUndefined();
    expect(c.get('d', 1)).toBeNull();
  });

  it('drops by key id every cached secret of a key in a rotation grace, and nothing of other keys', () => {
    const cache = new VerificationCache(60_000, 5_000, 100);
    const e = cache.epoch;
    cache.set('older111', toCachedKey(record({ key_id: 'key_g', siblings: ['newer222'] })), e, 0);
    cache.set('newer222', toCachedKey(record({ key_id: 'key_g', siblings: ['older111'] })), e, 0);
    cache.set('single33', toCachedKey(record({ key_id: 'key_s' })), e, 0);
    cache.dropKey('key_g');
    expect([cache.get('older111', 1), cache.get('newer222', 1)]).toEqual([undefined, undefined]);
    expect(cache.get('single33', 1)).not.toBeUndefined();
    cache.dropKey('key_s'); // no sibling: left to the event's own prefixes
    expect(cache.get('single33', 1)).not.toBeUndefined();
  });

  it('treats an unparseable instant as already passed', () => {
    expect(toCachedKey(record({ expires_at: 'not a date' })).expiresAtMs).toBe(0);
  });
});
