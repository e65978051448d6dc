import type { DataSource } from 'typeorm';
import { EventStore } from '../event-store/event-store';
import { replay } from './key.decider';
import { project } from './key.projection';

/**
 * Rebuilds every read model from the event store with the same projection the live path uses,
 * in one transaction (readers see the old tables until it commits). Two things are not in the
 * key's events and are kept: the credential hashes (a hash is never in an event), both last-used
 * times, which are projected from the `used` events on JetStream, and which keys' names stay
 * unclaimed (duplicates from before names were unique).
 */
export async function rebuildReadModels(ds: DataSource): Promise<{ keys: number; events: number }> {
  return ds.transaction(async (tx) => {
    const lastUsed: Array<{ id: string; last_used_at: Date | null; previous_secret_last_used_at: Date | null }> = await tx.query(
      `SELECT id, last_used_at, previous_secret_last_used_at FROM keys WHERE last_used_at IS NOT NULL OR previous_secret_last_used_at IS NOT NULL`,
    );
    const unclaimed = new Set((await tx.query(`SELECT id FROM keys WHERE NOT name_claimed`) as Array<{ id: string }>).map((r) => r.id));
    await tx.query('TRUNCATE keys');
    await tx.query('UPDATE key_credentials SET valid_until = NULL WHERE valid_until IS NOT NULL');
    const events = await new EventStore(tx).readAll();
    let keys = 0;
    for (let i = 0; i < events.length; ) {
      const streamId = events[i]!.stream_id;
      let j = i;
      while (j < events.length && events[j]!.stream_id === streamId) j++;
      const stream = events.slice(i, j);
      await project(tx, replay(streamId, stream), stream, unclaimed);
      keys++;
      i = j;
    }
    for (const { id, last_used_at, previous_secret_last_used_at } of lastUsed) {
      await tx.query(
        `UPDATE keys SET last_used_at = CASE WHEN rotated_at IS NULL OR rotated_at <= $2 THEN $2 END,
                         previous_secret_last_used_at = CASE WHEN rotated_at IS NULL OR rotated_at <= $3 THEN $3 END
          WHERE id = $1`,
        [id, last_used_at, previous_secret_last_used_at],
      );
    }
    return { keys, events: events.length };
  });
}
