import { toPage, type KeyView, type Page, type PageQuery, type VerificationRecord } from '@keyway/contracts';
import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { KeyError } from './key.errors';
import { keyView, verificationRecord, type KeyRow } from './key.projection';

@Injectable()
export class KeysQueries {
  constructor(private readonly ds: DataSource) {}

  async list(tenantId: string, q: PageQuery): Promise<Page<KeyView>> {
    const [rows, count] = await Promise.all([
      this.ds.query(`SELECT * FROM keys WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3`, [
        tenantId,
        q.pageSize,
        (q.page - 1) * q.pageSize,
      ]) as Promise<KeyRow[]>,
      this.ds.query(`SELECT count(*)::int AS n FROM keys WHERE tenant_id = $1`, [tenantId]) as Promise<Array<{ n: number }>>,
    ]);
    const now = new Date();
    return toPage(rows.map((r) => keyView(r, now)), count[0]?.n ?? 0, q);
  }

  async get(tenantId: string | null, id: string): Promise<KeyView> {
    const rows: KeyRow[] = await this.ds.query(`SELECT * FROM keys WHERE id = $1`, [id]);
    const row = rows[0];
    if (!row || (tenantId !== null && row.tenant_id !== tenantId)) throw new KeyError('not_found', `No key ${id}`);
    return keyView(row);
  }

  async view(em: EntityManager, id: string): Promise<KeyView> {
    const rows: KeyRow[] = await em.query(`SELECT * FROM keys WHERE id = $1`, [id]);
    if (!rows[0]) throw new KeyError('not_found', `No key ${id}`);
    return keyView(rows[0]);
  }

  /** What the gateway needs for one look-up id; null when no credential has that id. */
  async verify(lookupId: string): Promise<VerificationRecord | null> {
    const rows: Array<KeyRow & { hash: string; valid_until: Date | null; lookup_prefix: string }> = await this.ds.query(
      `SELECT k.*, c.hash, c.valid_until, 'kw_' || k.environment || '_' || c.lookup_id AS lookup_prefix
         FROM key_credentials c JOIN keys k ON k.id = c.key_id
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
