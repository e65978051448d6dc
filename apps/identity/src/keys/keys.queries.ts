import { toPage, type Environment, type KeyView, type Page, type PageQuery, type VerificationRecord } from '@keyway/contracts';
import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { KeyError } from './key.errors';
import { keyView, verificationRecord, type KeyRow } from './key.projection';

@Injectable()
export class KeysQueries {
  constructor(private readonly ds: DataSource) {}

  /** A key sees the keys of its own mode; the operator (no environment) sees both. */
  async list(scope: Viewer, q: PageQuery): Promise<Page<KeyView>> {
    const env = modeOf(scope);
    const [rows, count] = await Promise.all([
      this.ds.query(
        `SELECT k.*, t.rate_limit_ceiling FROM keys k LEFT JOIN tenants t ON t.id = k.tenant_id
          WHERE k.tenant_id = $1 AND ($4::text IS NULL OR k.environment = $4)
          ORDER BY k.created_at DESC, k.id DESC LIMIT $2 OFFSET $3`,
        [scope.tenant_id, q.pageSize, (q.page - 1) * q.pageSize, env],
      ) as Promise<KeyRow[]>,
      this.ds.query(`SELECT count(*)::int AS n FROM keys WHERE tenant_id = $1 AND ($2::text IS NULL OR environment = $2)`, [scope.tenant_id, env]) as Promise<
        Array<{ n: number }>
      >,
    ]);
    const now = new Date();
    return toPage(rows.map((r) => keyView(r, now)), count[0]?.n ?? 0, q);
  }

  /** Another tenant's key, or a key of the other mode, is not found: its existence is never revealed. */
  async get(scope: Viewer | null, id: string): Promise<KeyView> {
    const rows: KeyRow[] = await this.ds.query(`SELECT k.*, t.rate_limit_ceiling FROM keys k LEFT JOIN tenants t ON t.id = k.tenant_id WHERE k.id = $1`, [id]);
    const row = rows[0];
    const env = scope === null ? null : modeOf(scope);
    if (!row || (scope !== null && row.tenant_id !== scope.tenant_id) || (env !== null && row.environment !== env)) {
      throw new KeyError('not_found', `No key ${id}`);
    }
    return keyView(row);
  }

  /** What the gateway needs for one look-up id; null when no credential has that id. */
  async verify(lookupId: string): Promise<VerificationRecord | null> {
    const rows: Array<KeyRow & { hash: string; valid_until: Date | null; lookup_prefix: string; siblings: string[] }> = await this.ds.query(
      `SELECT k.*, t.rate_limit_ceiling, c.hash, c.valid_until, 'kw_' || k.environment || '_' || c.lookup_id AS lookup_prefix,
              ARRAY(SELECT o.lookup_id FROM key_credentials o
                     WHERE o.key_id = c.key_id AND o.lookup_id <> c.lookup_id AND (o.valid_until IS NULL OR o.valid_until > now())) AS siblings
         FROM key_credentials c JOIN keys k ON k.id = c.key_id LEFT JOIN tenants t ON t.id = k.tenant_id
        WHERE c.lookup_id = $1`,
      [lookupId],
    );
    return rows[0] ? verificationRecord(rows[0]) : null;
  }

  async dueForExpiry(limit: number): Promise<string[]> {
    const rows: Array<{ id: string }> = await this.ds.query(
      `SELECT id FROM keys WHERE NOT revoked AND NOT expired AND expires_at IS NOT NULL AND expires_at <= now() ORDER BY expires_at LIMIT $1`,
      [limit],
    );
    return rows.map((r) => r.id);
  }
}

/** Who reads: the tenant, and the calling key's mode when a key asks. */
export interface Viewer {
  tenant_id: string;
  actor: { type: string };
  environment?: Environment;
}

const modeOf = (v: Viewer): Environment | null => (v.actor.type === 'operator' || v.actor.type === 'system' ? null : (v.environment ?? 'live'));
