import type { VerificationRecord } from '@keyway/contracts';
import { fastCounter, type CounterSeries } from '@keyway/runtime';

/** A verified record with its instants parsed once, not on every request. */
export interface CachedKey {
  record: VerificationRecord;
  expiresAtMs: number | null;
  validUntilMs: number | null;
}

interface Entry {
  /** null: identity said there is no such key (a negative entry). */
  value: CachedKey | null;
  until: number;
}

/**
 * Values many keys share (a tenant's id, a scope list, a limit set, the enums) are kept once: a
 * gateway caches 100,000+ records, and JSON.parse gives each its own copies.
 */
const interned = new Map<string, unknown>();
const MAX_INTERNED = 50_000;
function intern<T>(value: T, id: string): T {
  const hit = interned.get(id);
  if (hit !== undefined) return hit as T;
  if (interned.size >= MAX_INTERNED) interned.clear();
  interned.set(id, value);
  return value;
}

const NO_SIBLINGS: string[] = Object.freeze([]) as unknown as string[];

export function toCachedKey(fresh: VerificationRecord): CachedKey {
  const at = (iso: string | null): number | null => {
    if (iso === null) return null;
    const t = Date.parse(iso);
    // An unparseable instant is treated as already passed: refuse rather than trust forever.
    return Number.isNaN(t) ? 0 : t;
  };
  const rl = fresh.rate_limit;
  const record: VerificationRecord = {
    ...fresh,
    tenant_id: intern(fresh.tenant_id, `t:${fresh.tenant_id}`),
    environment: intern(fresh.environment, `e:${fresh.environment}`),
    status: intern(fresh.status, `s:${fresh.status}`),
    scopes: intern(Object.freeze([...fresh.scopes]) as VerificationRecord['scopes'], `sc:${fresh.scopes.join(',')}`),
    rate_limit: intern(Object.freeze({ ...rl }), `rl:${rl.burst_per_second}:${rl.per_minute}:${rl.per_hour}:${rl.daily}`),
    // Nearly every key has one secret: one shared empty list instead of 100,000 of them.
    siblings: fresh.siblings.length === 0 ? NO_SIBLINGS : fresh.siblings,
  };
  return { record, expiresAtMs: at(record.expires_at), validUntilMs: at(record.valid_until) };
}

/** Beyond this many keys in a grace, the sibling index starts over (it only backs up invalidation). */
const MAX_KEYS_WITH_SIBLINGS = 100_000;

export class VerificationCache {
  private readonly map = new Map<string, Entry>();
  /**
   * Key id → the look-up ids cached here of a key that has more than one live secret (a rotation
   * grace): rare, so indexed apart from the 100,000s of single-secret keys, and enough for an event
   * about the key to drop every secret of it cached here.
   */
  private readonly withSiblings = new Map<string, Set<string>>();
  private epochValue = 0;
  /** keyway_verification_cache_total{result}: bumped in place, read by the registry at scrape. */
  private readonly hits: CounterSeries;
  private readonly misses: CounterSeries;
  private readonly evictions: CounterSeries;

  constructor(
    private readonly ttlMs: number,
    private readonly negativeTtlMs: number,
    private readonly maxEntries: number,
  ) {
    const total = fastCounter('keyway_verification_cache_total', 'Key verification cache look-ups (hit, miss) and entries evicted for room (eviction)');
    this.hits = total.series({ result: 'hit' });
    this.misses = total.series({ result: 'miss' });
    this.evictions = total.series({ result: 'eviction' });
  }

  get epoch(): number {
    return this.epochValue;
  }

  get size(): number {
    return this.map.size;
  }

  /** undefined: not cached (or expired); null: cached as unknown. */
  get(lookupId: string, now: number): CachedKey | null | undefined {
    const e = this.map.get(lookupId);
    if (e === undefined) {
      this.misses.n += 1;
      return undefined;
    }
    if (e.until <= now) {
      this.map.delete(lookupId);
      this.misses.n += 1;
      return undefined;
    }
    this.hits.n += 1;
    return e.value;
  }

  /** Stores unless an invalidation happened since `epochAtStart`; says whether it stored. */
  set(lookupId: string, value: CachedKey | null, epochAtStart: number, now: number): boolean {
    if (epochAtStart !== this.epochValue) return false;
    const ttl = value === null ? this.negativeTtlMs : this.ttlMs;
    if (ttl <= 0) return false;
    this.map.delete(lookupId);
    this.map.set(lookupId, { value, until: now + ttl });
    if (value !== null && value.record.siblings.length > 0) {
      if (this.withSiblings.size >= MAX_KEYS_WITH_SIBLINGS) this.withSiblings.clear();
      const ids = this.withSiblings.get(value.record.key_id) ?? new Set<string>();
      ids.add(lookupId);
      this.withSiblings.set(value.record.key_id, ids);
    }
    while (this.map.size > this.maxEntries) {
      const oldest = this.map.keys().next();
      if (oldest.done) break;
      this.map.delete(oldest.value);
      this.evictions.n += 1;
    }
    return true;
  }

  drop(lookupIds: readonly string[]): void {
    this.epochValue++;
    for (const id of lookupIds) this.map.delete(id);
  }

  clear(): void {
    this.epochValue++;
    this.map.clear();
    this.withSiblings.clear();
  }

  /** Drops every secret of `keyId` cached here that had a sibling (see `withSiblings`). */
  dropKey(keyId: string): void {
    const ids = this.withSiblings.get(keyId);
    if (ids === undefined) return;
    this.withSiblings.delete(keyId);
    this.drop([...ids]);
  }

  /** Drops every key of one tenant (its ceiling changed). A scan: operator actions are rare. */
  dropTenant(tenantId: string): void {
    this.epochValue++;
    for (const [id, e] of this.map) if (e.value !== null && e.value.record.tenant_id === tenantId) this.map.delete(id);
  }
}
