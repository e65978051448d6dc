import { z } from 'zod';
import { PAGE_SIZE_MAX } from './pagination';

/**
 * The size budget (DESIGN, "Sizes"). Every request and every answer crosses NATS, whose messages
 * hold at most 1 MiB (1,048,576 bytes) with the RPC envelope around them. An answer that does not
 * fit is never delivered, and the caller waits for its timeout; so every record has a bounded
 * size, and every answer that holds many records is built to fit.
 */
export const NATS_MAX_PAYLOAD = 1_048_576;
/** A free-form object (`properties`, `metadata`): at most this many bytes as compact UTF-8 JSON… */
export const FREEFORM_MAX_BYTES = 16_384;
/** …and at most this many levels deep (the object itself is level 1; each nested object or array one more). */
export const FREEFORM_MAX_DEPTH = 32;
export const PAGE_MAX = PAGE_SIZE_MAX;
/** A record that can appear in a page serialises to at most this, so a full page always fits. */
export const ITEM_MAX_BYTES = 20_480;
/**
 * The most any answer body may take: a full page of the largest records. The 24 KiB left below
 * NATS's limit are for the RPC envelope and the page's own fields.
 */
export const REPLY_MAX_BYTES = PAGE_MAX * ITEM_MAX_BYTES;
/**
 * A touchpoint as sent, serialised. Its fields' own limits allow about 32 KB (a 2,048-character
 * url of characters JSON escapes as `\uXXXX`, say), and 50 of those would not fit in a page.
 * The margin up to ITEM_MAX_BYTES is for the `id` and the normalised `occurred_at` it gains.
 */
export const TOUCHPOINT_MAX_BYTES = 20_000;
/** A journey embeds at most its latest 100 touchpoints; the rest are paged. */
export const JOURNEY_EMBEDDED_TOUCHPOINTS = 100;
export const JOURNEY_MAX_TOUCHPOINTS = 10_000;
/** Conversions are always embedded whole in a journey's own answer, so their number is bounded. */
export const JOURNEY_MAX_CONVERSIONS = 100;

/** UTF-8 length of a string without encoding it (a lone surrogate counts as U+FFFD would). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** Bytes of `value` as compact JSON, which is how it crosses NATS and how it is answered. */
export function jsonBytes(value: unknown): number {
  return utf8Length(JSON.stringify(value) ?? '');
}

/**
 * Why a free-form value cannot be stored, or undefined when it can. Depth is checked first and
 * without recursion, so a hostile 5,000-level document costs 33 steps, not a stack overflow;
 * strings are checked for what Postgres' jsonb refuses (NUL, a lone surrogate), which would
 * otherwise surface as a 500.
 */
export function freeFormProblem(value: unknown): string | undefined {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (typeof node === 'string') {
      if (!storableString(node)) return 'strings must be valid Unicode without NUL characters';
      continue;
    }
    if (typeof node !== 'object' || node === null) continue;
    if (depth > FREEFORM_MAX_DEPTH) return `nested more than ${FREEFORM_MAX_DEPTH} levels deep`;
    if (Array.isArray(node)) {
      for (const child of node) stack.push([child, depth + 1]);
    } else {
      for (const [key, child] of Object.entries(node)) {
        if (!storableString(key)) return 'keys must be valid Unicode without NUL characters';
        stack.push([child, depth + 1]);
      }
    }
  }
  const bytes = jsonBytes(value);
  if (bytes > FREEFORM_MAX_BYTES) return `${bytes} bytes as JSON; at most ${FREEFORM_MAX_BYTES}`;
  return undefined;
}

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function storableString(s: string): boolean {
  return !s.includes('\u0000') && !LONE_SURROGATE.test(s);
}

/**
 * A free-form JSON object within the size budget: `properties` of contacts, accounts and
 * touchpoints, `metadata` of keys. A value over the budget is one `invalid_request` detail on the
 * field that holds it. JSON Schema cannot say "16 KiB serialised", so the document carries the
 * limits as a description and `x-` keywords.
 */
export function freeFormObject<K extends z.ZodType<string>>(keys: K) {
  return z
    .record(keys, z.unknown())
    .superRefine((value, ctx) => {
      const problem = freeFormProblem(value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .meta({
      description: `A free-form JSON object: at most ${FREEFORM_MAX_BYTES} bytes as compact UTF-8 JSON and ${FREEFORM_MAX_DEPTH} levels deep; no NUL characters.`,
      'x-max-bytes': FREEFORM_MAX_BYTES,
      'x-max-depth': FREEFORM_MAX_DEPTH,
    });
}
/** Any keys. A field that also bounds its keys uses `freeFormObject(z.string().max(…))`: the same checks. */
export const FreeFormObject = freeFormObject(z.string());
export type FreeFormObject = z.infer<typeof FreeFormObject>;
