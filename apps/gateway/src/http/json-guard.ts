import type { ErrorDetail } from '@keyway/contracts';

/**
 * What the edge refuses in any request before a service sees it (DESIGN, Sizes): JSON nested
 * deeper than {@link MAX_JSON_DEPTH} levels, NUL anywhere in a string, a key, a query value or a
 * path parameter, and an unpaired UTF-16 surrogate in a body's string or key. Postgres refuses
 * NUL in text and jsonb, and jsonb refuses a lone surrogate (`"\ud800"`, which the services'
 * events carry): both were 500s. A document thousands of levels deep costs parsing and breaks
 * recursive code downstream. (A URL cannot carry a lone surrogate: its percent-decoding refuses
 * one, and the query keeps such a sequence as text.)
 *
 * The documented depth limit, 32 levels per free-form object (`properties`, `metadata`; the
 * object itself is level 1), is the contracts' FreeFormObject rule, which names the field. This
 * is the guard around it, counted from the body itself: a free-form object of 32 levels sits at
 * most 3 levels down (a touchpoint's `properties` in a journey), so no body the contracts accept
 * nests deeper than 35, and everything past 64 is refused before JSON.parse even runs.
 */
export const MAX_JSON_DEPTH = 64;

/** What most requests get: nothing to report, and nothing allocated to say so. */
const NONE: readonly ErrorDetail[] = Object.freeze([]);
/** At most this many NUL details in one answer: a body full of them gets a short error. */
const MAX_DETAILS = 10;
const NUL_MESSAGE = 'must not contain the NUL character (U+0000)';
const SURROGATE_MESSAGE = 'must be valid Unicode: a lone surrogate (U+D800 to U+DFFF without its pair) cannot be stored';
/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const UNPRINTABLE = /\0|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * Whether the JSON text nests arrays and objects deeper than `max`, without parsing it: brackets
 * are counted outside strings, and each string is skipped to its closing quote (one not preceded
 * by an odd run of backslashes) with indexOf, so a long string costs a native search, not a
 * loop in JavaScript. Iterative, so no depth of input can overflow the stack. Malformed text is
 * not judged here: JSON.parse refuses it next.
 */
export function jsonDepthExceeds(text: string, max: number): boolean {
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let close = i;
      for (;;) {
        close = text.indexOf('"', close + 1);
        if (close === -1) return false;
        let k = close - 1;
        while (k > i && text.charCodeAt(k) === 0x5c) k--;
        if ((close - 1 - k) % 2 === 0) break;
      }
      i = close;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return false;
}

/**
 * Whether the raw JSON text may hold a NUL or a lone surrogate: only an escape can put one in a
 * parsed string (`\u0000`, `\ud800`…`\udfff`; a raw NUL byte is invalid JSON, and invalid UTF-8
 * decodes to U+FFFD). One native regex search; a hit may still be a well-formed pair (an emoji a
 * client escaped) or an escaped backslash followed by `u0000`, which {@link unstorableFieldsOf}
 * tells apart.
 */
const SUSPECT_ESCAPE = /\\u(?:0000|[dD][89a-fA-F])/;
export const mayHoldUnstorable = (text: string): boolean => SUSPECT_ESCAPE.test(text);

/** A name fit for an error detail: NUL and lone surrogates shown as the escapes the client wrote. */
const printable = (name: string): string => name.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

const problemOf = (s: string): string | undefined => (s.includes('\0') ? NUL_MESSAGE : LONE_SURROGATE.test(s) ? SURROGATE_MESSAGE : undefined);

/**
 * Where a parsed body holds NUL or a lone surrogate, as `details` in the form zod's are (`a.b.0`,
 * `(body)` for the body itself). Recursive, which is safe because it runs only on bodies within
 * {@link MAX_JSON_DEPTH}.
 */
export function unstorableFieldsOf(value: unknown): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  const walk = (v: unknown, path: string): void => {
    if (out.length >= MAX_DETAILS) return;
    if (typeof v === 'string') {
      const problem = problemOf(v);
      if (problem) out.push({ field: path === '' ? '(body)' : path, message: problem });
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) walk(v[i], path === '' ? String(i) : `${path}.${i}`);
    } else if (typeof v === 'object' && v !== null) {
      for (const [key, item] of Object.entries(v)) {
        const at = path === '' ? printable(key) : `${path}.${printable(key)}`;
        const problem = problemOf(key);
        if (problem) out.push({ field: at, message: problem });
        walk(item, at);
      }
    }
  };
  walk(value, '');
  return out;
}

/**
 * Where the query string or the path parameters hold NUL. Only `%00` decodes to NUL there (Node's
 * HTTP parser refuses the raw byte), so a URL without it costs one search and nothing else.
 */
export function nulInUrl(url: string, query: unknown, params: unknown): readonly ErrorDetail[] {
  if (url.indexOf('%00') === -1) return NONE;
  const out: ErrorDetail[] = [];
  for (const part of [params, query]) {
    if (typeof part !== 'object' || part === null) continue;
    for (const [name, value] of Object.entries(part)) {
      const values: unknown[] = Array.isArray(value) ? value : [value];
      if (name.includes('\0') || values.some((v) => typeof v === 'string' && v.includes('\0'))) {
        out.push({ field: printable(name), message: NUL_MESSAGE });
      }
    }
  }
  return out.slice(0, MAX_DETAILS);
}
