import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { KeywayError, Rpc, ROLE_SCOPES, RATE_LIMIT_DEFAULTS, SessionReply, type Environment, type Scope, type SessionRecord } from '@keyway/contracts';
import type { NatsLiveness } from '../nats/liveness';
import type { RpcClient } from '../nats/rpc-client';
import type { CachedKey } from './verification-cache';

/** 32 random bytes, base64url: 256 bits, well over the 128 the design asks. */
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

/**
 * What identity stores and the gateways cache: a hash of the id, never the id. Domain-separated
 * from the CSRF token, so the stored hash does not give the token away.
 */
export const sessionHash = (id: string): string => createHash('sha256').update(`kw_session:${id}`).digest('hex');

/**
 * The CSRF token is derived from the session id (which only the member's browser holds, in an
 * HttpOnly cookie): every gateway replica computes the same token, after a restart too, with
 * nothing more to store, and a page reloaded reads it again from `GET /auth/v1/session`.
 */
export const csrfToken = (id: string): string => createHash('sha256').update(`kw_csrf:${id}`).digest('base64url');

export function mintSessionId(): string {
  return randomBytes(32).toString('base64url');
}

/** A signed-in member as the request path needs them. */
export interface SessionCaller {
  id: string;
  hash: string;
  record: SessionRecord;
}

interface Entry {
  /** null: identity knows no such session (remembered briefly). */
  record: SessionRecord | null;
  /** When the gateway asks identity again: the cache TTL, capped by the session's own ends. */
  until: number;
}

const UNAVAILABLE = new KeywayError('unavailable', 'Sessions cannot be checked right now; try again shortly');
export const SESSION_ENDED = new KeywayError('unauthorized', 'No session, or it has ended: sign in again');

/**
 * Sessions at the gateway, the way keys are: identity is asked on a miss
 * (`keyway.rpc.identity.sessions.verify`, by hash), the answer is cached for `ttlMs` at most and
 * never past the session's idle or absolute end, and identity's invalidation (a member removed,
 * re-roled, signed out, or a new password) drops a member's sessions here before identity answers.
 * Asking again every `ttlMs` is also what slides the idle end: identity moves its last-seen time
 * at most once a minute.
 */
export class SessionAuth {
  private readonly cache = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<SessionRecord | null>>();
  private epoch = 0;
  /** The gateway's clock; tests move it on instead of sleeping. */
  now: () => number = Date.now;

  constructor(
    private readonly rpc: RpcClient,
    private readonly liveness: NatsLiveness,
    private readonly ttlMs: number,
    private readonly negativeTtlMs: number,
    private readonly maxEntries: number,
  ) {}

  /** The id in a `kw_session` cookie value, or undefined if it cannot be one of ours. */
  static idOf(value: string | undefined): string | undefined {
    return value !== undefined && SESSION_ID.test(value) ? value : undefined;
  }

  /** The member behind a session id, or `401 unauthorized` (no such session, or it has ended). */
  async authenticate(id: string): Promise<SessionCaller> {
    const hash = sessionHash(id);
    const record = await this.lookup(hash);
    if (record === null) throw SESSION_ENDED;
    return { id, hash, record };
  }

  /** A session identity just made (sign-in): cached at once, so the first request needs no look-up. */
  remember(hash: string, record: SessionRecord): void {
    this.set(hash, record, this.epoch);
  }

  /** Drops one session (sign-out). */
  forget(hash: string): void {
    this.epoch++;
    this.cache.delete(hash);
    this.inflight.delete(hash);
  }

  /** Drops every cached session of a member (removed, re-roled, new password, signed out). */
  dropMember(memberId: string): void {
    this.epoch++;
    for (const [hash, e] of this.cache) if (e.record?.member_id === memberId) this.cache.delete(hash);
    this.inflight.clear();
  }

  clear(): void {
    this.epoch++;
    this.cache.clear();
    this.inflight.clear();
  }

  /** The session as a caller of the request path: the role's scopes, per-member limits, the chosen mode. */
  static asKey(s: SessionCaller, environment: Environment): CachedKey {
    const r = s.record;
    return {
      record: {
        key_id: r.member_id,
        tenant_id: r.tenant_id,
        prefix: '',
        environment,
        scopes: ROLE_SCOPES[r.role] as Scope[],
        status: 'active',
        expires_at: r.expires_at,
        valid_until: null,
        rate_limit: { ...RATE_LIMIT_DEFAULTS },
        hash: '',
        siblings: [],
      },
      expiresAtMs: Date.parse(r.expires_at),
      validUntilMs: null,
    };
  }

  private async lookup(hash: string): Promise<SessionRecord | null> {
    const now = this.now();
    if (this.liveness.trusted(now)) {
      const e = this.cache.get(hash);
      if (e !== undefined) {
        if (e.until > now) return e.record;
        this.cache.delete(hash);
      }
    } else if (!this.liveness.isConnected()) {
      throw UNAVAILABLE;
    }
    const pending = this.inflight.get(hash);
    if (pending) return pending;
    const p = this.fetch(hash);
    this.inflight.set(hash, p);
    const clean = (): void => {
      if (this.inflight.get(hash) === p) this.inflight.delete(hash);
    };
    p.then(clean, clean);
    return p;
  }

  private async fetch(hash: string): Promise<SessionRecord | null> {
    const epoch = this.epoch;
    const r = await this.rpc.call(Rpc.sessionsVerify, { session_hash: hash });
    if (!r.ok) throw r.error.code === 'unavailable' ? UNAVAILABLE : new KeywayError('internal', 'Something went wrong on our side');
    const reply = SessionReply.safeParse(r.response);
    if (!reply.success) throw new KeywayError('internal', 'Something went wrong on our side');
    this.set(hash, reply.data.record, epoch);
    return reply.data.record;
  }

  private set(hash: string, record: SessionRecord | null, epoch: number): void {
    if (epoch !== this.epoch) return;
    const now = this.now();
    const until = record === null ? now + this.negativeTtlMs : Math.min(now + this.ttlMs, Date.parse(record.idle_expires_at), Date.parse(record.expires_at));
    if (until <= now) return;
    this.cache.delete(hash);
    this.cache.set(hash, { record, until });
    while (this.cache.size > this.maxEntries) {
      const oldest = this.cache.keys().next();
      if (oldest.done) break;
      this.cache.delete(oldest.value);
    }
  }
}

/** `X-CSRF-Token` against the session's own token, in constant time. */
export function csrfMatches(given: string | string[] | undefined, id: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(csrfToken(id));
  return a.length === b.length && timingSafeEqual(a, b);
}
