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

/** Lowercase base36 from a CSPRNG, with rejection sampling so every character is uniform. */
export function randomLowerAlnum(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 252) out += ALPHABET[byte % 36];
      if (out.length === length) break;
    }
  }
  return out;
}

export function newId(kind: IdKind): string {
  return `${IdPrefix[kind]}_${randomLowerAlnum(20)}`;
}

export function idPattern(kind: IdKind): RegExp {
  return new RegExp(`^${IdPrefix[kind]}_[0-9a-z]{6,40}$`);
}
