import type { Environment, KeyView, Page, PageQuery, VerificationRecord } from '@keyway/contracts';
import { fetchPage, Keyset } from '@keyway/database';
import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { KeyError } from './key.errors';
import { keyView, verificationRecord, type KeyRow } from './key.projection';

/** Newest first, served by keys_tenant_list (tenant_id, created_at DESC, id DESC). */
const KEY_LIST = new Keyset({ list: 'keys', columns: [{ column: 'k.created_at', type: 'timestamptz' }, { column: 'k.id', type: 'text' }], direction: 'desc' });

@Injectable()
export class KeysQueries {
  constructor(private readonly ds: DataSource) {}

  /** A key sees the keys of its own mode; the operator (no environment) sees both. */
  async list(scope: Viewer, q: PageQuery): Promise<Page<KeyView>> {
    const page = await fetchPage<KeyRow>(this.ds, {
      select: 'k.*, t.rate_limit_ceiling',
      from: 'keys k LEFT JOIN tenants t ON t.id = k.tenant_id',
      where: 'k.tenant_id = $1 AND ($2::text IS NULL OR k.environment = $2)',
      params: [scope.tenant_id, modeOf(scope)],
      keyset: KEY_LIST,
      query: q,
      count: { from: 'keys k' },
    });
    const now = new Date();
    return { ...page, data: page.data.map((r) => keyView(r, now)) };
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
