import { effectiveRateLimit, type KeyView, type RateLimitOverride, type Scope, type VerificationRecord } from '@keyway/contracts';
import sql, { join, raw, type Sql } from 'sql-template-tag';
import { pgArray, type Queryable, type StoredEvent } from '../event-store/event-store';
import { lookupIdOf, statusOf, type KeyState } from './key.decider';

/**
 * The read-model writes of keys' new events, as values for the event store's `also`: the key list
 * rows (`k`, returning each row as stored) from the folded states, and the ends of the credentials
 * that `rotated` and `rotation_completed` events retire. The command path commits them with the events, the rebuild runs
 * them alone, so live and rebuilt tables cannot drift apart.
 *
 * A rotation can move the end of every older secret (never later, see the decider's `retire`), so
 * the credentials take their ends from the folded state: each secret that ended at or after the
 * first rotation (or completion of one) among these events, in one UPDATE (a row may be updated once per statement).
 */
export function projection(changes: ReadonlyArray<{ state: KeyState; events: readonly StoredEvent[] }>, opts: { unclaimed?: ReadonlySet<string> } = {}): Record<string, Sql> {
  const out: Record<string, Sql> = {
    k: sql`${keyUpsert(changes.map(({ state, events }) => ({ state, updatedAt: events[events.length - 1]!.occurred_at, claimed: !state.root && !opts.unclaimed?.has(state.id) })))} RETURNING *`,
  };
  const ended = changes.flatMap(({ state, events }) => {
    const firstRotation = events.find((e) => e.type === 'rotated' || e.type === 'rotation_completed');
    if (!firstRotation) return [];
    const since = Date.parse(firstRotation.occurred_at);
    return state.secrets.filter((s) => s.valid_until !== null && Date.parse(s.valid_until) >= since);
  });
  if (ended.length > 0) {
    out.retired = sql`UPDATE key_credentials c SET valid_until = r.until
      FROM unnest(${pgArray(ended.map((s) => s.lookup_id))}::text[], ${pgArray(ended.map((s) => s.valid_until))}::timestamptz[]) AS r(lookup_id, until)
      WHERE c.lookup_id = r.lookup_id`;
  }
  return out;
}

/** A new secret's credential: the hash under its look-up id. Only create and rotate issue one. */
export interface IssuedCredential {
  lookupId: string;
  keyId: string;
  hash: string;
  createdAt: Date;
}

export function credentialsInsert(issued: readonly IssuedCredential[]): Sql {
  return sql`INSERT INTO key_credentials (lookup_id, key_id, hash, valid_until, created_at)
    VALUES ${join(issued.map((c) => sql`(${c.lookupId}, ${c.keyId}, ${c.hash}, NULL, ${c.createdAt.toISOString()})`), ', ')}`;
}

/**
 * Keeps the read models in step with a key's events (the rebuild command's path). `unclaimed`:
 * keys whose name stays outside the uniqueness rule (duplicates from before it; see the
 * key-names migration), which only the live table knows.
 */
export async function project(db: Queryable, state: KeyState, events: readonly StoredEvent[], unclaimed?: ReadonlySet<string>): Promise<void> {
  if (events.length === 0) return;
  const ctes = Object.entries(projection([{ state, events }], { unclaimed })).map(([name, s]) => sql`${raw(name)} AS (${s})`);
  const statement = sql`WITH ${join(ctes, ', ')} SELECT 1`;
  await db.query(statement.text, statement.values);
}

/** The end of the key's latest grace: the latest end among its older secrets (null: never rotated). */
function graceUntil(state: KeyState): string | null {
  let until: number | null = null;
  for (const s of state.secrets) if (s.valid_until !== null) until = Math.max(until ?? -Infinity, Date.parse(s.valid_until));
  return until === null ? null : new Date(until).toISOString();
}

/**
 * The upsert of key list rows, each the folded state after its events. A rotation (a changed
 * rotated_at) sets both last-used times back to null. The name's claim (keys_name_unique: one
 * non-revoked key per name, tenant and mode) is taken on insert, except by root keys, and by any
 * key on a rename: a violation fails the whole statement, events included (409 at the edge).
 */
function keyUpsert(rows: ReadonlyArray<{ state: KeyState; updatedAt: string; claimed: boolean }>): Sql {
  const tuples = rows.map(
    ({ state: k, updatedAt, claimed }) =>
      sql`(${k.id}, ${k.tenant_id}, ${k.name}, ${k.prefix}, ${pgArray(k.scopes)}, ${k.environment}, ${k.enabled}, ${k.revoked}, ${k.expired}, ${k.expires_at},
           ${k.rate_limit === null ? null : JSON.stringify(k.rate_limit)}, ${JSON.stringify(k.metadata)}, ${k.created_at}, ${updatedAt}, ${k.rotated_at},
           NULL, ${k.version}, ${k.root}, ${claimed}, ${graceUntil(k)}::timestamptz, NULL)`,
  );
  return sql`INSERT INTO keys (id, tenant_id, name, prefix, scopes, environment, enabled, revoked, expired, expires_at,
                       rate_limit, metadata, created_at, updated_at, rotated_at, last_used_at, version, root,
                       name_claimed, grace_until, previous_secret_last_used_at)
     VALUES ${join(tuples, ', ')}
     ON CONFLICT (id) DO UPDATE SET
       name = EXCLUDED.name, prefix = EXCLUDED.prefix, scopes = EXCLUDED.scopes, enabled = EXCLUDED.enabled,
       revoked = EXCLUDED.revoked, expired = EXCLUDED.expired, expires_at = EXCLUDED.expires_at,
       rate_limit = EXCLUDED.rate_limit, metadata = EXCLUDED.metadata, updated_at = EXCLUDED.updated_at,
       rotated_at = EXCLUDED.rotated_at, version = EXCLUDED.version, grace_until = EXCLUDED.grace_until,
       name_claimed = CASE WHEN EXCLUDED.name IS DISTINCT FROM keys.name THEN true ELSE keys.name_claimed END,
       last_used_at = CASE WHEN EXCLUDED.rotated_at IS DISTINCT FROM keys.rotated_at THEN NULL ELSE keys.last_used_at END,
       previous_secret_last_used_at = CASE WHEN EXCLUDED.rotated_at IS DISTINCT FROM keys.rotated_at THEN NULL ELSE keys.previous_secret_last_used_at END`;
}

/** The list row as the projection writes it, for answering without reading it back. */
export function stateRow(state: KeyState, updatedAt: string): KeyRow {
  const grace = graceUntil(state);
  return {
    id: state.id,
    tenant_id: state.tenant_id,
    name: state.name,
    prefix: state.prefix,
    scopes: state.scopes,
    environment: state.environment,
    enabled: state.enabled,
    revoked: state.revoked,
    expired: state.expired,
    expires_at: state.expires_at === null ? null : new Date(state.expires_at),
    rate_limit: state.rate_limit,
    metadata: state.metadata,
    created_at: new Date(state.created_at ?? updatedAt),
    updated_at: new Date(updatedAt),
    rotated_at: state.rotated_at === null ? null : new Date(state.rotated_at),
    last_used_at: null,
    version: state.version,
    root: state.root,
    grace_until: grace === null ? null : new Date(grace),
    previous_secret_last_used_at: null,
  };
}

export interface KeyRow {
  id: string;
  tenant_id: string;
  name: string;
  prefix: string;
  scopes: string[];
  environment: 'live' | 'test';
  enabled: boolean;
  revoked: boolean;
  expired: boolean;
  expires_at: Date | null;
  rate_limit: RateLimitOverride | null;
  metadata: Record<string, string | number | boolean | null>;
  created_at: Date;
  updated_at: Date;
  rotated_at: Date | null;
  last_used_at: Date | null;
  version: number;
  root: boolean;
  /** The end of the key's latest rotation grace (null: never rotated). */
  grace_until: Date | null;
  /** The last use of an older secret, moved by `used` events with `secret: previous`. */
  previous_secret_last_used_at: Date | null;
  /** The tenant's ceiling, where the query joined it (null: the defaults). */
  rate_limit_ceiling?: RateLimitOverride | null;
}

function rowStatus(row: Pick<KeyRow, 'revoked' | 'expired' | 'expires_at' | 'enabled'>, now: Date): KeyView['status'] {
  return statusOf(
    { revoked: row.revoked, expired: row.expired, expires_at: row.expires_at?.toISOString() ?? null, enabled: row.enabled } as KeyState,
    now,
  );
}

export function keyView(row: KeyRow, now = new Date()): KeyView {
  const ceiling = row.rate_limit_ceiling ?? null;
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    scopes: row.scopes as Scope[],
    environment: row.environment,
    status: rowStatus(row, now),
    enabled: row.enabled,
    created_at: row.created_at.toISOString(),
    expires_at: row.expires_at?.toISOString() ?? null,
    last_used_at: row.last_used_at?.toISOString() ?? null,
    // Shown only while an older secret still works: outside a grace there is no previous secret.
    previous_secret_last_used_at:
      !row.revoked && row.grace_until !== null && row.grace_until.getTime() > now.getTime() ? (row.previous_secret_last_used_at?.toISOString() ?? null) : null,
    rate_limit: effectiveRateLimit(row.rate_limit, ceiling),
    metadata: row.metadata,
    root: row.root,
  };
}

export function verificationRecord(row: KeyRow & { hash: string; valid_until: Date | null; lookup_prefix: string; siblings: string[] }, now = new Date()): VerificationRecord {
  return {
    key_id: row.id,
    tenant_id: row.tenant_id,
    prefix: row.lookup_prefix,
    environment: row.environment,
    scopes: row.scopes as Scope[],
    status: rowStatus(row, now),
    expires_at: row.expires_at?.toISOString() ?? null,
    valid_until: row.valid_until?.toISOString() ?? null,
    rate_limit: effectiveRateLimit(row.rate_limit, row.rate_limit_ceiling ?? null),
    hash: row.hash,
    siblings: row.siblings,
  };
}
