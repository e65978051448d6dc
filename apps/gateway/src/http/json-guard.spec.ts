import fc from 'fast-check';
import { jsonDepthExceeds, mayHoldNul, nulFieldsOf, nulInUrl } from './json-guard';

/** The nesting depth of a parsed value: a scalar is 0, `[]` and `{}` are 1. */
function depthOf(v: unknown): number {
  if (Array.isArray(v)) return 1 + Math.max(0, ...v.map(depthOf));
  if (typeof v === 'object' && v !== null) return 1 + Math.max(0, ...Object.values(v).map(depthOf));
  return 0;
}

// Strings full of what could fool a scanner: quotes, backslashes, brackets.
const tricky = fc.string({ unit: fc.constantFrom('"', '\\', '[', ']', '{', '}', 'a', 'u', '0', '\0') });
const json = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tricky, fc.integer(), fc.constant(null), tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 4 }),
  object: fc.dictionary(tricky, tie('value'), { maxKeys: 4 }),
})).value;

describe('jsonDepthExceeds', () => {
  it('agrees with the depth of the parsed value, whatever the strings hold', () => {
    fc.assert(
      fc.property(json, fc.integer({ min: 0, max: 6 }), fc.boolean(), (value, max, pretty) => {
        const text = JSON.stringify(value, null, pretty ? 2 : undefined);
        expect(jsonDepthExceeds(text, max)).toBe(depthOf(value) > max);
      }),
      { numRuns: 2_000 },
    );
  });

  it('counts from the body itself and needs no stack for any depth', () => {
    expect(jsonDepthExceeds('[[1]]', 2)).toBe(false);
    expect(jsonDepthExceeds('[[[1]]]', 2)).toBe(true);
    expect(jsonDepthExceeds('{"a":{"b":{}}}', 3)).toBe(false);
    expect(jsonDepthExceeds('{"a":{"b":{}}}', 2)).toBe(true);
    expect(jsonDepthExceeds('['.repeat(10_000_000), 32)).toBe(true);
    expect(jsonDepthExceeds(`"${'['.repeat(1_000)}"`, 1)).toBe(false);
    expect(jsonDepthExceeds('["\\\\"]', 1)).toBe(false);
    expect(jsonDepthExceeds('["\\\\\\"[[["]', 1)).toBe(false);
    // Unterminated string: not judged here, JSON.parse refuses it.
    expect(jsonDepthExceeds('["[[[[', 1)).toBe(false);
  });
});

describe('NUL', () => {
  it('mayHoldNul finds every body whose parsed value holds NUL', () => {
    fc.assert(
      fc.property(json, (value) => {
        const text = JSON.stringify(value);
        const holds = nulFieldsOf(value).length > 0;
        if (holds) expect(mayHoldNul(text)).toBe(true);
        if (!mayHoldNul(text)) expect(holds).toBe(false);
      }),
      { numRuns: 1_000 },
    );
  });

  it('names each field like zod does, keys with the escape shown', () => {
    expect(nulFieldsOf({ a: { b: ['x', 'y\0'] }, c: 'ok', 'k\0': 1 })).toEqual([
      { field: 'a.b.1', message: expect.stringContaining('NUL') },
      { field: 'k\\u0000', message: expect.stringContaining('NUL') },
    ]);
    expect(nulFieldsOf('\0')).toEqual([{ field: '(body)', message: expect.any(String) }]);
    expect(nulFieldsOf({ a: 'a\\u0000' })).toEqual([]);
    expect(nulFieldsOf(Array.from({ length: 100 }, () => '\0'))).toHaveLength(10);
  });

  it('in the URL: query names and values, arrays, path parameters; nothing without %00', () => {
    expect(nulInUrl('/v1/x/%00?q=%00', { q: ['a', 'b\0'], 'n\0': '1' }, { id: '\0' })).toEqual([
      { field: 'id', message: expect.any(String) },
      { field: 'q', message: expect.any(String) },
      { field: 'n\\u0000', message: expect.any(String) },
    ]);
    expect(nulInUrl('/v1/x?q=a', { q: '\0' }, {})).toEqual([]);
    expect(nulInUrl('/v1/x?q=%2500', { q: '%00' }, {})).toEqual([]);
  });
});
