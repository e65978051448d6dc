import { parseKeyEvent, type KeyLifecycleEvent, type Scope } from '@keyway/contracts';
import { z } from 'zod';

/** One `used` event, reduced to what the usage tables take. */
export interface UsageRecord {
  id: string;
  tenantId: string;
  keyId: string;
  /** The UTC minute (epoch ms) the event is summed into: the minute of its `first_at`. */
  minute: number;
  count: number;
  rateLimited: number;
  /** `last_at`, epoch ms. */
  lastAt: number;
  /** null: a v1 event, which did not know them (never read as "used none"). */
  scopes: Scope[] | null;
}

// The contract only says "string"; Postgres would refuse a whole batch over one unreadable time
// or a NUL, so such an event is refused here, where refusing dead-letters only that message.
const Timestamp = z.iso.datetime({ offset: true });
const hasNul = (...values: string[]): boolean => values.some((v) => v.includes('\u0000'));

/**
 * Reads a message of `KEYWAY_USAGE` through the contract (a v1 `used` event upcasts with
 * `scopes_used: null`). Throws for anything else: another type, an unreadable time, a count
 * smaller than its rate-limited part.
 */
export function parseUsageEvent(raw: unknown): UsageRecord {
  const e = parseKeyEvent(raw);
  if (e.type !== 'used') throw new Error(`a ${e.type} event on the usage subject`);
  const first = Date.parse(Timestamp.parse(e.data.first_at));
  const last = Date.parse(Timestamp.parse(e.data.last_at));
  if (last < first) throw new Error('last_at is before first_at');
  if (e.data.rate_limited > e.data.count) throw new Error('rate_limited exceeds count');
  if (hasNul(e.id, e.tenant_id, e.key_id)) throw new Error('a NUL character in id, tenant_id or key_id');
  return {
    id: e.id,
    tenantId: e.tenant_id,
    keyId: e.key_id,
    minute: first - (((first % 60_000) + 60_000) % 60_000),
    count: e.data.count,
    rateLimited: e.data.rate_limited,
    lastAt: last,
    scopes: e.data.scopes_used,
  };
}

/**
 * Reads a lifecycle event of `KEYWAY` for the key projection: every type is validated (one that
 * does not parse is dead-lettered), only `created`, `updated` and `revoked` change the projection.
 * null for a `used` event (a stream that still captures `keyway.keys.>` whole): not a key's history.
 */
export function parseKeyLifecycleEvent(raw: unknown): KeyLifecycleEvent | null {
  const e = parseKeyEvent(raw);
  if (e.type === 'used') return null;
  Timestamp.parse(e.occurred_at);
  if (hasNul(e.id, e.tenant_id, e.key_id)) throw new Error('a NUL character in id, tenant_id or key_id');
  return e;
}
