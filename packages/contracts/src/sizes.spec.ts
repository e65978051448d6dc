import { z } from 'zod';
import { FREEFORM_MAX_BYTES, FREEFORM_MAX_DEPTH, FreeFormObject, NATS_MAX_PAYLOAD, REPLY_MAX_BYTES, jsonBytes, utf8Length } from './sizes';

/** An object `levels` deep: `{d: {d: … {}}}`. */
const nested = (levels: number): Record<string, unknown> => {
  let v: Record<string, unknown> = {};
  for (let i = 1; i < levels; i++) v = { d: v };
  return v;
};
/** `{p: "…"}` of exactly `bytes` bytes as JSON (`{"p":""}` is 8). */
const ofBytes = (bytes: number, char = 'x'): Record<string, unknown> => ({ p: char.repeat(bytes - 8) });

describe('FreeFormObject', () => {
  it('accepts an object of exactly the byte budget and refuses one byte more', () => {
    expect(jsonBytes(ofBytes(FREEFORM_MAX_BYTES))).toBe(FREEFORM_MAX_BYTES);
    expect(FreeFormObject.safeParse(ofBytes(FREEFORM_MAX_BYTES)).success).toBe(true);
    const over = FreeFormObject.safeParse(ofBytes(FREEFORM_MAX_BYTES + 1));
    expect(over.success).toBe(false);
    expect(over.error?.issues[0]?.message).toContain(String(FREEFORM_MAX_BYTES));
  });

  it('counts bytes as they are sent, not characters: escapes and multi-byte characters count in full', () => {
    // U+0001 is sent as the six characters \u0001; é is two bytes of UTF-8; an emoji four.
    expect(jsonBytes({ p: '\u0001' })).toBe(14);
    expect(jsonBytes({ p: 'é😀' })).toBe(14);
    expect(FreeFormObject.safeParse({ p: '\u0001'.repeat(2731) }).success).toBe(false); // 16,394 bytes in 2,731 characters
    expect(FreeFormObject.safeParse({ p: '😀'.repeat(4095) }).success).toBe(false); // 16,388 bytes
    expect(FreeFormObject.safeParse({ p: '😀'.repeat(4094) }).success).toBe(true);
  });

  it(`accepts ${FREEFORM_MAX_DEPTH} levels and refuses ${FREEFORM_MAX_DEPTH + 1}, in objects and arrays alike`, () => {
    expect(FreeFormObject.safeParse(nested(FREEFORM_MAX_DEPTH)).success).toBe(true);
    expect(FreeFormObject.safeParse(nested(FREEFORM_MAX_DEPTH + 1)).error?.issues[0]?.message).toMatch(/levels deep/);
    let arrays: unknown = [];
    for (let i = 2; i < FREEFORM_MAX_DEPTH; i++) arrays = [arrays];
    expect(FreeFormObject.safeParse({ a: arrays }).success).toBe(true);
    expect(FreeFormObject.safeParse({ a: [arrays] }).success).toBe(false);
  });

  it('refuses a hostile depth quickly and without overflowing the stack', () => {
    // Built by hand: JSON.parse of this would be the attacker's cost, not ours.
    expect(FreeFormObject.safeParse(nested(100_000)).success).toBe(false);
  });

  it('refuses what Postgres jsonb cannot store: NUL and lone surrogates, in values and keys', () => {
    for (const bad of [{ a: 'x\u0000y' }, { 'k\u0000': 1 }, { a: ['\ud800'] }, { a: 'x\udc00' }, { '\udbff': 1 }]) {
      expect(FreeFormObject.safeParse(bad).success).toBe(false);
    }
    expect(FreeFormObject.safeParse({ a: '😀', b: ['\ud83d\ude00'] }).success).toBe(true);
  });

  it('names the field that holds it', () => {
    const Body = z.object({ properties: FreeFormObject, touchpoints: z.array(z.object({ properties: FreeFormObject })) });
    const r = Body.safeParse({ properties: {}, touchpoints: [{ properties: {} }, { properties: nested(40) }] });
    expect(r.error?.issues.map((i) => i.path.join('.'))).toEqual(['touchpoints.1.properties']);
  });

  it('is still an object with its limits in the JSON Schema', () => {
    expect(z.toJSONSchema(FreeFormObject, { unrepresentable: 'any' })).toMatchObject({
      type: 'object',
      description: expect.stringContaining(String(FREEFORM_MAX_BYTES)),
      'x-max-bytes': FREEFORM_MAX_BYTES,
      'x-max-depth': FREEFORM_MAX_DEPTH,
    });
  });
});

describe('the reply budget', () => {
  it('leaves room under NATS max_payload for the RPC envelope', () => {
    expect(NATS_MAX_PAYLOAD - REPLY_MAX_BYTES).toBeGreaterThanOrEqual(16_384);
  });

  it('measures UTF-8 like Buffer does', () => {
    for (const s of ['', 'ascii', 'é', '€', '😀', 'a😀b€é', '\u0001"\\']) expect(utf8Length(s)).toBe(Buffer.byteLength(s));
  });
});
