import fc from 'fast-check';
import { jsonDepthExceeds, mayHoldUnstorable, nulInUrl, unstorableFieldsOf } from './json-guard';

/** The nesting depth of a parsed value: a scalar is 0, `[]` and `{}` are 1. */
function depthOf(v: unknown): number {
  if (Array.isArray(v)) return 1 + Math.max(0, ...v.map(depthOf));
  if (typeof v === 'object' && v !== null) return 1 + Math.max(0, ...Object.values(v).map(depthOf));
  return 0;
}

// Strings full of what could fool a scanner: quotes, backslashes, brackets.
const tricky = fc.string({ unit: fc.constantFrom('"', '\\', '[', ']', '{', '}', 'a', 'u', '0', 'd', '8', '\0', '\ud83d', '\ude00', '\ud800') });
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

describe('NUL and lone surrogates', () => {
  it('mayHoldUnstorable finds every body whose parsed value holds one, whatever its escapes', () => {
    fc.assert(
      fc.property(json, fc.boolean(), (value, escapeAll) => {
        // JSON.stringify escapes NUL and lone surrogates; a client may also escape everything else.
        const plain = JSON.stringify(value);
        const text = escapeAll ? plain.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) : plain;
        expect(JSON.parse(text)).toEqual(value);
        if (unstorableFieldsOf(value).length > 0) expect(mayHoldUnstorable(text)).toBe(true);
      }),
      { numRuns: 1_000 },
    );
  });

  it('tells a lone surrogate from a pair, in strings and keys', () => {
    expect(unstorableFieldsOf({ a: '\ud83d\ude00', b: 'x\ud800', c: ['\ude00y'], '\udbff': 1 })).toEqual([
      { field: 'b', message: expect.stringContaining('surrogate') },
      { field: 'c.0', message: expect.stringContaining('surrogate') },
      { field: '\\udbff', message: expect.stringContaining('surrogate') },
    ]);
    expect(mayHoldUnstorable('{"a":"\\u00e9 \\u20ac"}')).toBe(false);
    expect(mayHoldUnstorable('{"a":"\\uD83D\\uDE00"}')).toBe(true);
  });

  it('names each field like zod does, keys with the escape shown', () => {
    expect(unstorableFieldsOf({ a: { b: ['x', 'y\0'] }, c: 'ok', 'k\0': 1 })).toEqual([
      { field: 'a.b.1', message: expect.stringContaining('NUL') },
      { field: 'k\\u0000', message: expect.stringContaining('NUL') },
    ]);
    expect(unstorableFieldsOf('\0')).toEqual([{ field: '(body)', message: expect.any(String) }]);
    expect(unstorableFieldsOf({ a: 'a\\u0000' })).toEqual([]);
    expect(unstorableFieldsOf(Array.from({ length: 100 }, () => '\0'))).toHaveLength(10);
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
