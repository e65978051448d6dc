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

/** Gives decided events their ids, versions and envelope fields. */
export function prepareEvents(
  streamId: string,
  expectedVersion: number,
  events: readonly DecidedEvent[],
  meta: { tenant_id: string; actor: Actor; now: Date },
): StoredEvent[] {
  return events.map((e, i) => ({
    ...e,
    id: newId('event'),
    stream_id: streamId,
    version: expectedVersion + i + 1,
    schema_version: 1,
    tenant_id: meta.tenant_id,
    actor: meta.actor,
    occurred_at: meta.now.toISOString(),
  })) as StoredEvent[];
}

/** The INSERT of these events, its parameters appended to `params` (so it can sit in a CTE). */
export function eventsInsertSql(stored: readonly StoredEvent[], params: unknown[]): string {
  const tuples = stored.map((e) => {
    const b = params.length;
    params.push(e.id, e.stream_id, e.version, e.type, e.schema_version, e.tenant_id, e.prefix, JSON.stringify(e.actor), JSON.stringify(e.data), e.occurred_at);
    return `(${Array.from({ length: 10 }, (_, k) => `$${b + k + 1}`).join(', ')})`;
  });
  return `INSERT INTO events (${EVENT_COLUMNS}) VALUES ${tuples.join(', ')}`;
}

/** Wakes the relay at commit (a notification is delivered only if the transaction commits). */
export const NOTIFY_RELAY_SQL = `SELECT pg_notify('keyway_events', '')`;

export function rethrowVersionConflict(err: unknown, streamId: string, expectedVersion: number): never {
  const driver = (err as { driverError?: { code?: string; constraint?: string } }).driverError ?? (err as { code?: string; constraint?: string });
  if (driver.code === '23505' && driver.constraint === 'events_stream_version') throw new StreamVersionConflict(streamId, expectedVersion);
  throw err;
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
  const stored = prepareEvents(streamId, expectedVersion, events, meta);
  const params: unknown[] = [];
  try {
    await em.query(eventsInsertSql(stored, params), params);
  } catch (err) {
    rethrowVersionConflict(err, streamId, expectedVersion);
  }
  await em.query(NOTIFY_RELAY_SQL);
  return stored;
}
