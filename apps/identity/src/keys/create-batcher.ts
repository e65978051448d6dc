import type { RateLimitOverride } from '@keyway/contracts';
import type { DataSource, EntityManager } from 'typeorm';
import { eventsInsertSql, NOTIFY_RELAY_SQL, type StoredEvent } from './event-store';
import type { KeyState } from './key.decider';
import { keyUpsertSql } from './key.projection';

export interface NewKeyWrite {
  stored: StoredEvent[];
  state: KeyState;
  credential: { lookupId: string; hash: string; createdAt: Date };
}

/**
 * One statement for any number of new keys: their events, list rows and credentials. It answers
 * the ceilings of their tenants, which the answers' limits are capped by, without a round trip.
 */
export function newKeysSql(writes: readonly NewKeyWrite[]): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const events = eventsInsertSql(writes.flatMap((w) => w.stored), params);
  const list = keyUpsertSql(writes.map((w) => ({ state: w.state, updatedAt: w.stored[w.stored.length - 1]!.occurred_at })), params);
  const credentials = writes.map((w) => {
    const b = params.length;
    params.push(w.credential.lookupId, w.state.id, w.credential.hash, w.credential.createdAt);
    return `($${b + 1}, $${b + 2}, $${b + 3}, NULL, $${b + 4})`;
  });
  params.push([...new Set(writes.map((w) => w.state.tenant_id))]);
  return {
    sql: `WITH e AS (${events}), k AS (${list}),
          c AS (INSERT INTO key_credentials (lookup_id, key_id, hash, valid_until, created_at) VALUES ${credentials.join(', ')})
          SELECT t.id, t.rate_limit_ceiling FROM (${NOTIFY_RELAY_SQL}) AS notified LEFT JOIN tenants t ON t.id = ANY($${params.length}::text[])`,
    params,
  };
}

/** Tenant id → its ceiling as the operator set it (null: the defaults). */
export type Ceilings = ReadonlyMap<string, RateLimitOverride | null>;

export async function writeNewKeys(em: DataSource | EntityManager, writes: readonly NewKeyWrite[]): Promise<Ceilings> {
  const { sql, params } = newKeysSql(writes);
  const rows: Array<{ id: string | null; rate_limit_ceiling: RateLimitOverride | null }> = await em.query(sql, params);
  return new Map(rows.filter((r) => r.id !== null).map((r) => [r.id!, r.rate_limit_ceiling]));
}

interface Pending {
  write: NewKeyWrite;
  resolve: (ceilings: Ceilings) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for key creation. While one statement is in flight, the creates that arrive wait
 * and then go in together as the next statement: under load one commit carries many keys, alone
 * a create still takes one round trip. Each key is its own new stream, so a batch cannot conflict
 * with itself; if a batch fails anyway (say a look-up id collision), each key is retried alone so
 * only the guilty one fails.
 */
export class CreateBatcher {
  private queue: Pending[] = [];
  private flushing = false;

  constructor(
    private readonly ds: DataSource,
    private readonly maxBatch = 200,
  ) {}

  write(write: NewKeyWrite): Promise<Ceilings> {
    return new Promise((resolve, reject) => {
      this.queue.push({ write, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        try {
          const ceilings = await writeNewKeys(this.ds, batch.map((p) => p.write));
          for (const p of batch) p.resolve(ceilings);
        } catch (err) {
          if (batch.length === 1) {
            batch[0]!.reject(err);
            continue;
          }
          for (const p of batch) await writeNewKeys(this.ds, [p.write]).then(p.resolve, p.reject);
        }
      }
    } finally {
      this.flushing = false;
    }
  }
}
