import { randomBytes } from 'node:crypto';

/** Every id carries a prefix from this table. */
export const IdPrefix = {
  tenant: 'ten',
  key: 'key',
  user: 'usr',
  contact: 'ct',
  account: 'acc',
  journey: 'jr',
  touchpoint: 'tp',
  conversion: 'cv',
  event: 'evt',
  request: 'req',
} as const;
export type IdKind = keyof typeof IdPrefix;

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let pos = 0;

/**
 * Lowercase base36 from a CSPRNG, with rejection sampling so every character is uniform. The
 * bytes come from a 4 KiB pool refilled from `randomBytes` when used up (one call per ~190 ids of
 * 20 characters), not one `randomBytes` per id: a fresh call per id was ~10 % of the gateway's CPU
 * on a cached whoami when it generated request ids. Ids stay unpredictable; key secrets do not
 * come from here (see `mintKey`).
 */
export function randomLowerAlnum(length: number): string {
  let out = '';
  while (out.length < length) {
    if (pos >= pool.length) {
      pool = randomBytes(POOL_BYTES);
      pos = 0;
    }
    const byte = pool[pos++]!;
    if (byte < 252) out += ALPHABET[byte % 36];
  }
  return out;
}

export function newId(kind: IdKind): string {
  return `${IdPrefix[kind]}_${randomLowerAlnum(20)}`;
}

export function idPattern(kind: IdKind): RegExp {
  return new RegExp(`^${IdPrefix[kind]}_[0-9a-z]{6,40}$`);
}
