import { effectiveRateLimit, type KeyView, type RateLimitOverride, type Scope, type VerificationRecord } from '@keyway/contracts';
import type { EntityManager } from 'typeorm';
import { lookupIdOf, statusOf, type KeyState } from './key.decider';
import type { StoredEvent } from './event-store';

/**
 * The read-model writes for one key's new events, as members of a WITH clause (parameters
 * appended to `params`): the key list row (`k`, returning the row as stored) from the folded
 * state, and the validity of the credentials that `rotated` events retire. The command path puts
 * them in the same statement as the events, the rebuild command runs them alone, so live and
 * rebuilt tables cannot drift apart.
 *
 * A rotation can move the end of every older secret (never later, see the decider's `retire`), so
 * the credentials take their ends from the folded state: each secret that ended at or after the
 * first rotation among these events, in one UPDATE (a row may be updated once per statement).
 */
export function projectionCtes(state: KeyState, events: readonly StoredEvent[], params: unknown[]): string[] {
  const ctes = [`k AS (${keyUpsertSql([{ state, updatedAt: events[events.length - 1]!.occurred_at }], params)} RETURNING *)`];
  const firstRotation = events.find((e) => e.type === 'rotated');
  if (firstRotation) {
    const since = Date.parse(firstRotation.occurred_at);
    const ended = state.secrets.filter((s) => s.valid_until !== null && Date.parse(s.valid_until) >= since);
    if (ended.length > 0) {
      params.push(ended.map((s) => s.lookup_id), ended.map((s) => s.valid_until));
      ctes.push(`retired AS (UPDATE key_credentials c SET valid_until = r.until
        FROM unnest($${params.length - 1}::text[], $${params.length}::timestamptz[]) AS r(lookup_id, until)
        WHERE c.lookup_id = r.lookup_id)`);
    }
  }
  return ctes;
}

/** Keeps the read models in step with a key's events (the rebuild command's path). */
export async function project(em: EntityManager, state: KeyState, events: readonly StoredEvent[]): Promise<void> {
  if (events.length === 0) return;
  const params: unknown[] = [];
  await em.query(`WITH ${projectionCtes(state, events, params).join(', ')} SELECT 1`, params);
}

/**
 * The upsert of key list rows, each the folded state after its events, parameters appended to
 * `params`. A rotation (a changed rotated_at) sets last_used_at back to null.
 */
export function keyUpsertSql(rows: ReadonlyArray<{ state: KeyState; updatedAt: string }>, params: unknown[]): string {
  const tuples = rows.map(({ state, updatedAt }) => {
    const b = params.length;
    params.push(
      state.id, state.tenant_id, state.name, state.prefix, state.scopes, state.environment, state.enabled,
      state.revoked, state.expired, state.expires_at, state.rate_limit === null ? null : JSON.stringify(state.rate_limit),
      JSON.stringify(state.metadata), state.created_at, updatedAt, state.rotated_at, state.version, state.root,
    );
    const $ = (n: number) => `$${b + n}`;
    return `(${[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15].map($).join(', ')}, NULL, ${$(16)}, ${$(17)})`;
  });
  return `INSERT INTO keys (id, tenant_id, name, prefix, scopes, environment, enabled, revoked, expired, expires_at,
                       rate_limit, metadata, created_at, updated_at, rotated_at, last_used_at, version, root)
     VALUES ${tuples.join(', ')}
     ON CONFLICT (id) DO UPDATE SET
       name = EXCLUDED.name, prefix = EXCLUDED.prefix, scopes = EXCLUDED.scopes, enabled = EXCLUDED.enabled,
       revoked = EXCLUDED.revoked, expired = EXCLUDED.expired, expires_at = EXCLUDED.expires_at,
       rate_limit = EXCLUDED.rate_limit, metadata = EXCLUDED.metadata, updated_at = EXCLUDED.updated_at,
       rotated_at = EXCLUDED.rotated_at, version = EXCLUDED.version,
       last_used_at = CASE WHEN EXCLUDED.rotated_at IS DISTINCT FROM keys.rotated_at THEN NULL ELSE keys.last_used_at END`;
}

/** The list row as the projection writes it, for answering without reading it back. */
export function stateRow(state: KeyState, updatedAt: string): KeyRow {
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
  };
}

export { lookupIdOf };

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
  /** The tenant's ceiling, where the query joined it (null: the defaults). */
  rate_limit_ceiling?: RateLimitOverride | null;
}

export function rowStatus(row: Pick<KeyRow, 'revoked' | 'expired' | 'expires_at' | 'enabled'>, now: Date): KeyView['status'] {
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
    rate_limit: effectiveRateLimit(row.rate_limit, ceiling),
    metadata: row.metadata,
    root: row.root,
  };
}

export function verificationRecord(row: KeyRow & { hash: string; valid_until: Date | null; lookup_prefix: string }, now = new Date()): VerificationRecord {
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
  };
}
