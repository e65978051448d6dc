import { hash, randomBytes } from 'node:crypto';
import type { Environment } from './keys';
import { randomLowerAlnum } from './ids';

/**
 * `kw_<env>_<keyid>_<secret><checksum>`: keyid 8 lowercase alphanumerics, secret 32 base62 from a
 * CSPRNG, checksum 6 base62 of CRC32 over everything before it. Parsing needs no network call, so
 * mistyped keys are refused before any look-up and secret scanners can recognise a key.
 */
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
export const KEY_PATTERN = /^kw_(live|test)_([a-z0-9]{8})_([0-9A-Za-z]{32})([0-9A-Za-z]{6})$/;
/** A key's public prefix, `kw_<env>_<keyid>`: the part of a key that events and logs carry. */
const PREFIX_PATTERN = /^kw_(?:live|test)_([a-z0-9]{8})$/;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/**
 * CRC-32 (IEEE, the same as zlib's) of ASCII text, where a character is its byte. Only key bodies
 * reach it, minted ones and those KEY_PATTERN accepted: ASCII both. A table in plain JavaScript,
 * measured (packages/contracts/bench/crc.js, `npm run bench -- crc`) faster than node:zlib's
 * crc32 on a 41-character body (about 130 against 160 ns; parseKey 530 against 610 ns) and than
 * the table with a non-ASCII fallback it replaced (300 ns; parseKey 730 ns), and it runs in a
 * browser as well.
 */
function crc32Ascii(text: string): number {
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i++) crc = CRC_TABLE[(crc ^ text.charCodeAt(i)) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function base62Fixed(value: number, width: number): string {
  let out = '';
  let v = value;
  for (let i = 0; i < width; i++) {
    out = BASE62[v % 62] + out;
    v = Math.floor(v / 62);
  }
  return out;
}

/** A key secret: fresh bytes from the CSPRNG for every key, never from the id pool. */
function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248) out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

export interface ParsedKey {
  environment: Environment;
  lookupId: string;
  prefix: string;
}

export function keyPrefix(environment: Environment, lookupId: string): string {
  return `kw_${environment}_${lookupId}`;
}

/**
 * The look-up id of a prefix `kw_<env>_<lookupId>` (the one parser: identity and the gateway read
 * prefixes from events with it); undefined for anything that is not a prefix.
 */
export function lookupIdOfPrefix(prefix: unknown): string | undefined {
  return typeof prefix === 'string' ? PREFIX_PATTERN.exec(prefix)?.[1] : undefined;
}

export function mintKey(environment: Environment): { key: string; prefix: string; lookupId: string } {
  const lookupId = randomLowerAlnum(8);
  const prefix = keyPrefix(environment, lookupId);
  const body = `${prefix}_${randomBase62(32)}`;
  return { key: body + base62Fixed(crc32Ascii(body), 6), prefix, lookupId };
}

/** Null for anything that is not a well-formed key with a correct checksum. */
export function parseKey(key: string): ParsedKey | null {
  const m = KEY_PATTERN.exec(key);
  if (!m) return null;
  const body = key.slice(0, -6);
  if (base62Fixed(crc32Ascii(body), 6) !== m[4]) return null;
  return { environment: m[1] as Environment, lookupId: m[2]!, prefix: keyPrefix(m[1] as Environment, m[2]!) };
}

/**
 * SHA-256 of the whole key. The secret has ~190 bits from a CSPRNG, so a slow hash buys nothing
 * and a fast one keeps verification on every request cheap; no pepper has to be shared.
 */
export function hashKey(key: string): string {
  return hash('sha256', key, 'hex');
}

/**
 * Runs on every authenticated request: one-shot hashing straight to hex (no Hash object, no
 * Buffers: a third of the time of hashing to a Buffer and `timingSafeEqual`), then a comparison
 * that looks at every character whatever it finds, so its time says nothing about the digest.
 */
export function hashMatches(key: string, expectedHex: string): boolean {
  const actual = hash('sha256', key, 'hex');
  let diff = actual.length ^ expectedHex.length;
  for (let i = 0; i < actual.length; i++) diff |= actual.charCodeAt(i) ^ expectedHex.charCodeAt(i);
  return diff === 0;
}
