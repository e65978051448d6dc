import { randomBytes } from 'node:crypto';
import { canonicalJson, ChainKey, GENESIS, type ChainContent } from './chain';

const entry: ChainContent = {
  id: 'evt_1',
  tenant_id: 'ten_1',
  key_id: 'key_1',
  type: 'updated',
  schema_version: 1,
  occurred_at: '2025-01-01T00:00:00.000Z',
  prefix: 'kw_test_abcd1234',
  actor_type: 'key',
  actor_id: 'key_root',
  data: { name: 'ci', metadata: { b: 1, a: [2, { d: null, c: 'x' }] } },
};

describe('canonicalJson', () => {
  it('is one text per value, whatever the key order', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: 'é' } })).toBe('{"a":{"c":"é","d":[1,{"x":1,"y":2}]},"b":1}');
    expect(canonicalJson({ a: 1, b: 2 })).toBe(canonicalJson({ b: 2, a: 1 }));
    expect(canonicalJson({ a: undefined, b: null })).toBe('{"b":null}');
  });
});

describe('ChainKey', () => {
  const key = new ChainKey(randomBytes(32).toString('hex'));

  it('links deterministically, over the previous link, the content and the position', () => {
    const first = key.link(GENESIS, entry, 1);
    expect(first).toHaveLength(32);
    expect(key.link(GENESIS, { ...entry, data: JSON.parse(JSON.stringify(entry.data)) as unknown }, 1).equals(first)).toBe(true);
    expect(key.link(GENESIS, entry, 2).equals(first)).toBe(false);
    expect(key.link(Buffer.alloc(32, 1), entry, 1).equals(first)).toBe(false);
    for (const edit of [{ prefix: 'kw_live_abcd1234' }, { tenant_id: 'ten_2' }, { occurred_at: '2025-01-01T00:00:00.001Z' }, { data: { name: 'cj' } }, { actor_id: 'key_other' }]) {
      expect(key.link(GENESIS, { ...entry, ...edit }, 1).equals(first)).toBe(false);
    }
  });

  it('needs the key: another key gives other links and refuses the seal', () => {
    const guessed = new ChainKey('a guessed key, thirty-two characters long');
    expect(guessed.link(GENESIS, entry, 1).equals(key.link(GENESIS, entry, 1))).toBe(false);
    expect(key.sealIsValid(entry, '7', key.seal(entry, 7))).toBe(true);
    expect(key.sealIsValid(entry, '7', guessed.seal(entry, 7))).toBe(false);
    expect(key.sealIsValid(entry, '8', key.seal(entry, 7))).toBe(false);
    expect(key.sealIsValid({ ...entry, type: 'revoked' }, '7', key.seal(entry, 7))).toBe(false);
    expect(key.sealIsValid(entry, '7', null)).toBe(false);
    expect(key.sealIsValid(entry, '7', Buffer.alloc(3))).toBe(false);
  });
});

