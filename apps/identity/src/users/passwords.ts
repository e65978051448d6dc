import { randomBytes } from 'node:crypto';
import { hash, parseOptions, verify } from '@node-rs/argon2';

/**
 * Member passwords: argon2id (the library's default algorithm) at OWASP's first recommended
 * setting, m = 19 MiB, t = 2, p = 1 (Password Storage Cheat Sheet). Why not more: every sign-in
 * holds m of memory for the length of a hash, and a 2-core gateway host must answer sign-in with a
 * p99 under 300 ms while the API runs beside it; measured here one verify takes ~25–50 ms (see
 * `npm run bench -- sign-in`). Why not the library's default (m = 4 MiB, t = 3): below OWASP's
 * minimum. Hashes made with other parameters still verify (the PHC string carries them) and are
 * re-hashed at the next successful sign-in.
 */
const ARGON2_OPTIONS = { memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export const hashPassword = (password: string): Promise<string> => hash(password, ARGON2_OPTIONS);
export const verifyPassword = (stored: string, password: string): Promise<boolean> => verify(stored, password).catch(() => false);

/** True when a stored hash was made with other parameters than today's (it is re-hashed on sign-in). */
export function needsRehash(stored: string): boolean {
  try {
    const o = parseOptions(stored);
    return o.memoryCost !== ARGON2_OPTIONS.memoryCost || o.timeCost !== ARGON2_OPTIONS.timeCost || o.parallelism !== ARGON2_OPTIONS.parallelism;
  } catch {
    return true;
  }
}

let dummy: Promise<string> | undefined;
/**
 * A hash no password matches, with today's parameters: an unknown email is verified against it, so
 * it costs one argon2 verification like a known email with a wrong password.
 */
export function dummyHash(): Promise<string> {
  return (dummy ??= hashPassword(randomBytes(32).toString('hex')));
}
