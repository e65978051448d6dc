import type { VerificationRecord } from '@keyway/contracts';

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

export function toCachedKey(record: VerificationRecord): CachedKey {
  const at = (iso: string | null): number | null => {
    if (iso === null) return null;
    const t = Date.parse(iso);
    // An unparseable instant is treated as already passed: refuse rather than trust forever.
    return Number.isNaN(t) ? 0 : t;
  };
  return { record, expiresAtMs: at(record.expires_at), validUntilMs: at(record.valid_until) };
}

/**
 * Verification records by look-up id, bounded in size and time. Eviction is by insertion order
 * (a Map keeps it): with a TTL every live key is re-inserted once per TTL, so the oldest insertion
 * is a good stand-in for least recently used, and a hit costs a single Map read.
 *
 * The epoch guards the fetch/invalidate race: a fetch remembers the epoch it started in and its
 * result is stored only if no invalidation (or clear) happened meanwhile, so a record fetched
 * before a revocation can never be cached after it.
 */
export class VerificationCache {
  private readonly map = new Map<string, Entry>();
  private epochValue = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly negativeTtlMs: number,
    private readonly maxEntries: number,
  ) {}

  get epoch(): number {
    return this.epochValue;
  }

  get size(): number {
    return this.map.size;
  }

  /** undefined: not cached (or expired); null: cached as unknown. */
  get(lookupId: string, now: number): CachedKey | null | undefined {
    const e = this.map.get(lookupId);
    if (e === undefined) return undefined;
    if (e.until <= now) {
      this.map.delete(lookupId);
      return undefined;
    }
    return e.value;
  }

  /** Stores unless an invalidation happened since `epochAtStart`; says whether it stored. */
  set(lookupId: string, value: CachedKey | null, epochAtStart: number, now: number): boolean {
    if (epochAtStart !== this.epochValue) return false;
    const ttl = value === null ? this.negativeTtlMs : this.ttlMs;
    if (ttl <= 0) return false;
    this.map.delete(lookupId);
    this.map.set(lookupId, { value, until: now + ttl });
    while (this.map.size > this.maxEntries) {
      const oldest = this.map.keys().next();
      if (oldest.done) break;
      this.map.delete(oldest.value);
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
  }
}
