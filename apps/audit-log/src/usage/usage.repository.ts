import type { KeyLifecycleEvent } from '@keyway/contracts';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource, EntityManager } from 'typeorm';
import type { UsageRecord } from './usage-events';

/** A key as the usage routes know it (from its lifecycle events). */
export interface UsageKey {
  tenantId: string;
  environment: 'live' | 'test';
  scopes: string[];
  createdAt: Date;
  revoked: boolean;
}

// Batches are sorted by primary key before they are written, so two replicas adding to the same
// rows take their locks in the same order and queue rather than deadlock.
const ADD_MINUTES = `
  INSERT INTO usage_minutes (tenant_id, key_id, minute, requests, rate_limited)
  SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[], $5::bigint[])
  ON CONFLICT (tenant_id, key_id, minute) DO UPDATE
    SET requests = usage_minutes.requests + EXCLUDED.requests,
        rate_limited = usage_minutes.rate_limited + EXCLUDED.rate_limited`;
const ADD_SCOPES = `
  INSERT INTO usage_scopes (tenant_id, key_id, scope, last_used_at)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
  ON CONFLICT (tenant_id, key_id, scope) DO UPDATE
    SET last_used_at = GREATEST(usage_scopes.last_used_at, EXCLUDED.last_used_at)`;
const ADD_GAPS = `
  INSERT INTO usage_scope_gaps (tenant_id, key_id, unknown_until)
  SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
  ON CONFLICT (tenant_id, key_id) DO UPDATE
    SET unknown_until = GREATEST(usage_scope_gaps.unknown_until, EXCLUDED.unknown_until)`;

// The projection keeps a key's tenant from its first event: an event naming another tenant for
// the same key id changes nothing (WHERE on the conflicting row).
const KEY_CREATED = `
  INSERT INTO usage_keys (key_id, tenant_id, environment, scopes, scopes_version, created_at)
  VALUES ($1, $2, $3, $4, $5, $6)
  ON CONFLICT (key_id) DO UPDATE
    SET environment = EXCLUDED.environment,
        created_at = EXCLUDED.created_at,
        scopes = CASE WHEN usage_keys.scopes_version <= EXCLUDED.scopes_version THEN EXCLUDED.scopes ELSE usage_keys.scopes END,
        scopes_version = GREATEST(usage_keys.scopes_version, EXCLUDED.scopes_version)
    WHERE usage_keys.tenant_id = EXCLUDED.tenant_id`;
const KEY_SCOPES = `
  INSERT INTO usage_keys (key_id, tenant_id, scopes, scopes_version) VALUES ($1, $2, $3, $4)
  ON CONFLICT (key_id) DO UPDATE
    SET scopes = EXCLUDED.scopes, scopes_version = EXCLUDED.scopes_version
    WHERE usage_keys.tenant_id = EXCLUDED.tenant_id AND usage_keys.scopes_version <= EXCLUDED.scopes_version`;
const KEY_REVOKED = `
  INSERT INTO usage_keys (key_id, tenant_id, revoked) VALUES ($1, $2, true)
  ON CONFLICT (key_id) DO UPDATE SET revoked = true WHERE usage_keys.tenant_id = EXCLUDED.tenant_id`;

const keyOf = (...parts: Array<string | number>): string => parts.join('\u0000');
const byKey = <T>(m: Map<string, T>): T[] => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);

@Injectable()
export class UsageRepository {
  constructor(@InjectDataSource() private readonly ds: DataSource) {}

  /**
   * Adds a batch of `used` events in one transaction: their ids first, and only the events whose id
   * was new are summed. A redelivered event (even one another replica is applying right now: its
   * id insert waits for that commit) adds nothing.
   */
  async applyUsage(records: readonly UsageRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.ds.transaction(async (m) => {
      const ids = [...new Set(records.map((r) => r.id))].sort();
      const fresh = new Set(
        (await m.query<Array<{ event_id: string }>>(
          'INSERT INTO usage_applied_events (event_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING RETURNING event_id',
          [ids],
        )).map((r) => r.event_id),
      );
      const minutes = new Map<string, { t: string; k: string; minute: number; requests: number; rateLimited: number }>();
      const scopes = new Map<string, { t: string; k: string; scope: string; at: number }>();
      const gaps = new Map<string, { t: string; k: string; at: number }>();
      for (const r of records) {
        if (!fresh.delete(r.id)) continue; // known, or a second copy in this batch
        const mk = keyOf(r.tenantId, r.keyId, r.minute);
        const row = minutes.get(mk) ?? { t: r.tenantId, k: r.keyId, minute: r.minute, requests: 0, rateLimited: 0 };
        row.requests += r.count;
        row.rateLimited += r.rateLimited;
        minutes.set(mk, row);
        if (r.scopes === null) {
          const gk = keyOf(r.tenantId, r.keyId);
          gaps.set(gk, { t: r.tenantId, k: r.keyId, at: Math.max(r.lastAt, gaps.get(gk)?.at ?? 0) });
        } else {
          for (const scope of r.scopes) {
            const sk = keyOf(r.tenantId, r.keyId, scope);
            scopes.set(sk, { t: r.tenantId, k: r.keyId, scope, at: Math.max(r.lastAt, scopes.get(sk)?.at ?? 0) });
          }
        }
      }
      await this.write(m, ADD_MINUTES, byKey(minutes), (r) => [r.t, r.k, iso(r.minute), r.requests, r.rateLimited]);
      await this.write(m, ADD_SCOPES, byKey(scopes), (r) => [r.t, r.k, r.scope, iso(r.at)]);
      await this.write(m, ADD_GAPS, byKey(gaps), (r) => [r.t, r.k, iso(r.at)]);
    });
  }

  /** Applies lifecycle events to the key projection, in order, in one transaction; idempotent. */
  async applyKeyEvents(events: readonly KeyLifecycleEvent[]): Promise<void> {
    await this.ds.transaction(async (m) => {
      for (const e of events) {
        // No version (events written before versions were stamped): treated as the oldest.
        const version = e.version ?? 0;
        switch (e.type) {
          case 'created':
            await m.query(KEY_CREATED, [e.key_id, e.tenant_id, e.data.environment, e.data.scopes, version, e.occurred_at]);
            break;
          case 'updated':
            if (e.data.scopes !== undefined) await m.query(KEY_SCOPES, [e.key_id, e.tenant_id, e.data.scopes, version]);
            break;
          case 'revoked':
            await m.query(KEY_REVOKED, [e.key_id, e.tenant_id]);
            break;
          case 'enabled':
          case 'disabled':
          case 'rotated':
          case 'rotation_completed':
          case 'expired':
            break; // nothing the usage routes show
        }
      }
    });
  }

  /** Sets, once, from when usage is recorded; later calls keep the first value. */
  async startTracking(from: Date): Promise<void> {
    await this.ds.query('INSERT INTO usage_tracking (complete_from) VALUES ($1) ON CONFLICT (id) DO NOTHING', [from.toISOString()]);
  }

  /** Forgets applied event ids older than `days`; returns how many. */
  async pruneApplied(days: number): Promise<number> {
    const r = await this.ds.query<[unknown[], number]>(
      `DELETE FROM usage_applied_events WHERE applied_at < now() - make_interval(days => $1)`,
      [days],
    );
    return r[1];
  }

  /** The key in the tenant, or undefined (unknown, another tenant's, or `created` not applied yet). */
  async key(tenantId: string, keyId: string): Promise<UsageKey | undefined> {
    const rows = await this.ds.query<Array<{ environment: 'live' | 'test'; scopes: string[]; created_at: Date; revoked: boolean }>>(
      'SELECT environment, scopes, created_at, revoked FROM usage_keys WHERE key_id = $1 AND tenant_id = $2 AND environment IS NOT NULL',
      [keyId, tenantId],
    );
    const r = rows[0];
    return r && { tenantId, environment: r.environment, scopes: r.scopes, createdAt: r.created_at, revoked: r.revoked };
  }

  /** Sums per bucket of `stepMs` (aligned to the epoch, so to UTC minutes, hours and days) in [from, to). */
  async buckets(tenantId: string, keyId: string, from: Date, to: Date, stepMs: number): Promise<Map<number, { requests: number; rateLimited: number }>> {
    const rows = await this.ds.query<Array<{ start: Date; requests: string; rate_limited: string }>>(
      `SELECT date_bin(make_interval(secs => $5::double precision / 1000), minute, 'epoch') AS start,
              sum(requests) AS requests, sum(rate_limited) AS rate_limited
         FROM usage_minutes
        WHERE tenant_id = $1 AND key_id = $2 AND minute >= $3 AND minute < $4
        GROUP BY 1`,
      [tenantId, keyId, from.toISOString(), to.toISOString(), stepMs],
    );
    return new Map(rows.map((r) => [r.start.getTime(), { requests: Number(r.requests), rateLimited: Number(r.rate_limited) }]));
  }

  /** Each scope's last use since `since`, and what bounds the data's completeness for the key. */
  async scopeUse(tenantId: string, keyId: string, since: Date): Promise<{ used: Map<string, Date>; unknownUntil: Date | undefined; trackingFrom: Date | undefined }> {
    const [used, gaps, tracking] = await Promise.all([
      this.ds.query<Array<{ scope: string; last_used_at: Date }>>(
        'SELECT scope, last_used_at FROM usage_scopes WHERE tenant_id = $1 AND key_id = $2 AND last_used_at >= $3',
        [tenantId, keyId, since.toISOString()],
      ),
      this.ds.query<Array<{ unknown_until: Date }>>('SELECT unknown_until FROM usage_scope_gaps WHERE tenant_id = $1 AND key_id = $2', [tenantId, keyId]),
      this.ds.query<Array<{ complete_from: Date }>>('SELECT complete_from FROM usage_tracking'),
    ]);
    return { used: new Map(used.map((r) => [r.scope, r.last_used_at])), unknownUntil: gaps[0]?.unknown_until, trackingFrom: tracking[0]?.complete_from };
  }

  private async write<T>(m: EntityManager, sql: string, rows: readonly T[], cols: (row: T) => Array<string | number>): Promise<void> {
    if (rows.length === 0) return;
    const arrays: Array<Array<string | number>> = [];
    for (const row of rows) cols(row).forEach((v, i) => (arrays[i] ??= []).push(v));
    await m.query(sql, arrays);
  }
}

const iso = (ms: number): string => new Date(ms).toISOString();
