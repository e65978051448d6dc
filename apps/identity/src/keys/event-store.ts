import { newId, type Actor } from '@keyway/contracts';
import type { EntityManager } from 'typeorm';
import type { DecidedEvent, RecordedEvent } from './key.decider';
import { StreamVersionConflict } from './key.errors';

export type StoredEvent = RecordedEvent & {
  id: string;
  stream_id: string;
  version: number;
  schema_version: 1;
  actor: Actor;
};

interface EventRow {
  event_id: string;
  stream_id: string;
  version: number;
  type: string;
  schema_version: number;
  tenant_id: string;
  prefix: string;
  actor: Actor;
  data: Record<string, unknown>;
  occurred_at: Date;
}

export function rowToEvent(row: EventRow): StoredEvent {
  return {
    id: row.event_id,
    stream_id: row.stream_id,
    version: row.version,
    type: row.type,
    schema_version: 1,
    tenant_id: row.tenant_id,
    prefix: row.prefix,
    actor: row.actor,
    data: row.data,
    occurred_at: row.occurred_at.toISOString(),
  } as StoredEvent;
}

export const EVENT_COLUMNS = 'event_id, stream_id, version, type, schema_version, tenant_id, prefix, actor, data, occurred_at';

export async function readStream(em: EntityManager, streamId: string): Promise<StoredEvent[]> {
  const rows: EventRow[] = await em.query(`SELECT ${EVENT_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY version`, [streamId]);
  return rows.map(rowToEvent);
}

/**
 * Appends with the expected stream version: the unique (stream_id, version) makes a concurrent
 * writer fail with StreamVersionConflict. Must run inside the caller's transaction, so the read
 * models it updates commit (or not) together with the events.
 */
export async function appendToStream(
  em: EntityManager,
  streamId: string,
  expectedVersion: number,
  events: readonly DecidedEvent[],
  meta: { tenant_id: string; actor: Actor; now: Date },
): Promise<StoredEvent[]> {
  if (events.length === 0) return [];
  const stored: StoredEvent[] = events.map((e, i) => ({
    ...e,
    id: newId('event'),
    stream_id: streamId,
    version: expectedVersion + i + 1,
    schema_version: 1,
    tenant_id: meta.tenant_id,
    actor: meta.actor,
    occurred_at: meta.now.toISOString(),
  })) as StoredEvent[];
  const values: unknown[] = [];
  const tuples = stored.map((e, i) => {
    values.push(e.id, e.stream_id, e.version, e.type, e.schema_version, e.tenant_id, e.prefix, JSON.stringify(e.actor), JSON.stringify(e.data), e.occurred_at);
    const b = i * 10;
    return `($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6}, $${b + 7}, $${b + 8}, $${b + 9}, $${b + 10})`;
  });
  try {
    await em.query(`INSERT INTO events (${EVENT_COLUMNS}) VALUES ${tuples.join(', ')}`, values);
  } catch (err) {
    const driver = (err as { driverError?: { code?: string; constraint?: string } }).driverError ?? (err as { code?: string; constraint?: string });
    if (driver.code === '23505' && driver.constraint === 'events_stream_version') throw new StreamVersionConflict(streamId, expectedVersion);
    throw err;
  }
  // Wakes the relay at commit (NOTIFY is delivered only if the transaction commits).
  await em.query(`NOTIFY keyway_events`);
  return stored;
}
