import DataLoader from 'dataloader';
import { In, type FindOptionsWhere, type Repository } from 'typeorm';

/** A row owned by a tenant, found by its globally unique id. */
export interface TenantRow {
  id: string;
  tenant_id: string;
}

/**
 * Reads by id, coalesced: every `load(tenantId, id)` made in the same turn of the event loop
 * (the NATS messages of one socket read, and their promise chains) goes to Postgres as one
 * `WHERE id IN (…)`, so a busy service pays one query, one pool checkout and one socket write for
 * the lot instead of one each. A row of another tenant is not found, exactly as with
 * `WHERE tenant_id = $1 AND id = $2` (ids are unique across tenants; the check is on the row).
 * No cache: each load sees what is committed when its batch runs (DataLoader, `cache: false`,
 * dispatched from the check phase so that every message of the turn is in the batch).
 */
export function byIdLoader<E extends TenantRow>(repo: Repository<E>, maxBatchSize = 256): (tenantId: string, id: string) => Promise<E | null> {
  const loader = new DataLoader<string, E | null>(
    async (ids) => {
      const rows = await repo.findBy({ id: In([...new Set(ids)]) } as FindOptionsWhere<E>);
      const byId = new Map(rows.map((r) => [r.id, r]));
      return ids.map((id) => byId.get(id) ?? null);
    },
    { cache: false, maxBatchSize, batchScheduleFn: (run) => setImmediate(run) },
  );
  return async (tenantId, id) => {
    const row = await loader.load(id);
    return row !== null && row.tenant_id === tenantId ? row : null;
  };
}
