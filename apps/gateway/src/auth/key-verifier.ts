import { hashKey, hashMatches, mintKey, parseKey, Rpc, VerifyReply, type ErrorBody, type ParsedKey } from '@keyway/contracts';
import type { NatsLiveness } from '../nats/liveness';
import type { RpcClient } from '../nats/rpc-client';
import { toCachedKey, type CachedKey, type VerificationCache } from './verification-cache';

export type AuthResult = { ok: true; key: CachedKey } | { ok: false; error: ErrorBody };

type Lookup = { ok: true; value: CachedKey | null } | { ok: false; error: ErrorBody };

const fail = (code: ErrorBody['code'], error: string, prefix?: string): AuthResult => ({
  ok: false,
  error: prefix === undefined ? { error, code } : { error, code, prefix },
});

const MISSING: AuthResult = fail('missing_key', 'Send your API key as "Authorization: Bearer <key>"');
const MALFORMED: AuthResult = fail('invalid_key', 'The Authorization header must be "Bearer <key>" with a well-formed Keyway API key');
const UNAVAILABLE: Lookup = {
  ok: false,
  error: { error: 'Keys cannot be verified right now; try again shortly', code: 'unavailable' },
};

/**
 * Turns an Authorization header into a verified key, or the documented 401. Malformed keys and
 * bad checksums are refused before any look-up. Every well-formed key costs one SHA-256 and one
 * constant-time compare, against a dummy hash when the prefix is unknown, so "right prefix,
 * wrong secret" and "unknown prefix" take the same time.
 */
export class KeyVerifier {
  /** A hash no presented key can match: compared against when identity knows no such prefix. */
  private readonly dummyHash = hashKey(mintKey('live').key);
  /** One identity look-up per prefix at a time; dropped on invalidation so nobody joins a stale one. */
  private readonly inflight = new Map<string, Promise<Lookup>>();

  constructor(
    private readonly cache: VerificationCache,
    private readonly rpc: RpcClient,
    private readonly liveness: NatsLiveness,
  ) {}

  /** Synchronous on a cache hit (most requests): no promise to wait for. */
  authenticate(header: string | undefined): AuthResult | Promise<AuthResult> {
    if (header === undefined || header === '') return MISSING;
    // RFC 7235: the scheme is case-insensitive; exactly one space, then the key.
    if (header.length < 8 || header.length > 200 || header.slice(0, 7).toLowerCase() !== 'bearer ') return MALFORMED;
    const token = header.slice(7).trim();
    const parsed = parseKey(token);
    if (parsed === null) return MALFORMED;

    const looked = this.lookup(parsed.lookupId);
    return looked instanceof Promise ? looked.then((l) => this.check(token, parsed, l)) : this.check(token, parsed, looked);
  }

  private check(token: string, parsed: ParsedKey, looked: Lookup): AuthResult {
    if (!looked.ok) return looked;
    const cached = looked.value;
    const matches = hashMatches(token, cached === null ? this.dummyHash : cached.record.hash);
    const prefix = parsed.prefix;
    if (cached === null || !matches || cached.record.prefix !== prefix) {
      return fail('invalid_key', `API key ${prefix} is not valid`, prefix);
    }
    const now = Date.now();
    if (cached.validUntilMs !== null && now >= cached.validUntilMs) {
      return fail('invalid_key', `API key ${prefix} was rotated and its grace period has ended`, prefix);
    }
    switch (cached.record.status) {
      case 'revoked':
        return fail('key_revoked', `API key ${prefix} has been revoked`, prefix);
      case 'disabled':
        return fail('key_disabled', `API key ${prefix} is disabled`, prefix);
      case 'expired':
        return fail('key_expired', `API key ${prefix} has expired`, prefix);
      case 'active':
        break;
      default: {
        const never: never = cached.record.status;
        return fail('invalid_key', `API key ${prefix} has an unknown status ${String(never)}`, prefix);
      }
    }
    if (cached.expiresAtMs !== null && cached.expiresAtMs <= now) {
      return fail('key_expired', `API key ${prefix} has expired`, prefix);
    }
    return { ok: true, key: cached };
  }

  /**
   * Drops these look-up ids (cache and in-flight look-ups), every secret of `scope.keyId` cached
   * with a sibling, or every key of `scope.tenantId`.
   */
  invalidate(lookupIds: readonly string[], scope: { tenantId?: string; keyId?: string } = {}): void {
    const { tenantId, keyId } = scope;
    this.cache.drop(lookupIds);
    for (const id of lookupIds) this.inflight.delete(id);
    if (keyId !== undefined) this.cache.dropKey(keyId);
    if (tenantId !== undefined) {
      this.cache.dropTenant(tenantId);
      this.inflight.clear();
    }
  }

  clear(): void {
    this.cache.clear();
    this.inflight.clear();
  }

  private lookup(lookupId: string): Promise<Lookup> | Lookup {
    const now = Date.now();
    if (this.liveness.trusted(now)) {
      const hit = this.cache.get(lookupId, now);
      if (hit !== undefined) return { ok: true, value: hit };
    } else if (!this.liveness.isConnected()) {
      // NATS has been gone longer than we may trust the cache, and identity is out of reach.
      return UNAVAILABLE;
    }
    const pending = this.inflight.get(lookupId);
    if (pending) return pending;
    const p = this.fetch(lookupId);
    this.inflight.set(lookupId, p);
    const clean = (): void => {
      if (this.inflight.get(lookupId) === p) this.inflight.delete(lookupId);
    };
    p.then(clean, clean);
    return p;
  }

  private async fetch(lookupId: string): Promise<Lookup> {
    const epoch = this.cache.epoch;
    const r = await this.rpc.call(Rpc.keysVerify, { lookup_id: lookupId });
    if (!r.ok) return r.error.code === 'unavailable' ? UNAVAILABLE : { ok: false, error: r.error };
    const reply = VerifyReply.safeParse(r.response);
    if (!reply.success) return { ok: false, error: { error: 'Something went wrong on our side', code: 'internal' } };
    const value = reply.data.record === null ? null : toCachedKey(reply.data.record);
    this.cache.set(lookupId, value, epoch, Date.now());
    return { ok: true, value };
  }
}
