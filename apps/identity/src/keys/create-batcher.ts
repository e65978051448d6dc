import type { DataSource, EntityManager } from 'typeorm';
import { eventsInsertSql, NOTIFY_RELAY_SQL, type StoredEvent } from './event-store';
import type { KeyState } from './key.decider';
import { keyUpsertSql } from './key.projection';

export interface NewKeyWrite {
  stored: StoredEvent[];
  state: KeyState;
  credential: { lookupId: string; hash: string; createdAt: Date };
}

/** One statement for any number of new keys: their events, list rows and credentials. */
export function newKeysSql(writes: readonly NewKeyWrite[]): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const events = eventsInsertSql(writes.flatMap((w) => w.stored), params);
  const list = keyUpsertSql(writes.map((w) => ({ state: w.state, updatedAt: w.stored[w.stored.length - 1]!.occurred_at })), params);
  const credentials = writes.map((w) => {
    const b = params.length;
    params.push(w.credential.lookupId, w.state.id, w.credential.hash, w.credential.createdAt);
    return `($${b + 1}, $${b + 2}, $${b + 3}, NULL, $${b + 4})`;
  });
  return {
    sql: `WITH e AS (${events}), k AS (${list}),
          c AS (INSERT INTO key_credentials (lookup_id, key_id, hash, valid_until, created_at) VALUES ${credentials.join(', ')})
          ${NOTIFY_RELAY_SQL}`,
    params,
  };
}

export async function writeNewKeys(em: DataSource | EntityManager, writes: readonly NewKeyWrite[]): Promise<void> {
  const { sql, params } = newKeysSql(writes);
  await em.query(sql, params);
}

interface Pending {
  write: NewKeyWrite;
  resolve: () => void;
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

  write(write: NewKeyWrite): Promise<void> {
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
          await writeNewKeys(this.ds, batch.map((p) => p.write));
          for (const p of batch) p.resolve();
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
