import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { canonicalEntry, canonicalJson, ChainKey, GENESIS, type ChainContent } from './chain';

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

describe('canonicalEntry', () => {
  const scalar = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null));
  const content = fc.record({
    id: fc.string(),
    tenant_id: fc.string(),
    key_id: fc.option(fc.string(), { nil: null }),
    type: fc.string(),
    schema_version: fc.integer(),
    occurred_at: fc.string(),
    prefix: fc.option(fc.string(), { nil: null }),
    actor_type: fc.string(),
    actor_id: fc.string(),
    data: fc.oneof(fc.jsonValue(), fc.dictionary(fc.string(), fc.oneof(scalar, fc.jsonValue()))),
  });

  it('is the generic canonical JSON of the entry, byte for byte, whatever it holds', () => {
    fc.assert(
      fc.property(content, fc.oneof(fc.nat(), fc.string()), fc.constantFrom('position' as const, 'stream_seq' as const), (e, value, extra) => {
        const generic = canonicalJson({
          id: e.id,
          tenant_id: e.tenant_id,
          key_id: e.key_id,
          type: e.type,
          schema_version: e.schema_version,
          occurred_at: e.occurred_at,
          prefix: e.prefix,
          actor: { type: e.actor_type, id: e.actor_id },
          data: e.data,
          [extra]: value,
        });
        expect(canonicalEntry(e, extra, value)).toBe(generic);
      }),
      { numRuns: 2_000 },
    );
  });

  it('keeps the links and seals of existing chains (values made before the fast path)', () => {
    const fixed = new ChainKey('a fixed test key, thirty-two characters long');
    const e: ChainContent = { ...entry, data: { name: 'ci', metadata: { b: 1, a: [2, { d: null, c: 'x\u00e9"' }] } } };
    const member: ChainContent = { ...e, key_id: null, prefix: null, type: 'member.updated', actor_type: 'member', data: {} };
    expect(fixed.link(GENESIS, e, 1).toString('hex')).toBe('444c87497929723b8732245c6738819b86961419580fe471166877877aefa4e7');
    expect(fixed.seal(e, 7).toString('hex')).toBe('1cbe4a5f379ae0a5cb3557b038725ac67222290cf3b51ff8dd9fc200af80680f');
    expect(fixed.link(Buffer.alloc(32, 1), member, 12).toString('hex')).toBe('c77f0693eaf50135367a1e2a4ef1bc0e115864908c645c5710742e4441c56e21');
    expect(fixed.seal(member, '123456789012').toString('hex')).toBe('6738d81904b4cd91384553502c07271d87acfad810e5b9e42f995ed615b4c459');
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

