import { eventSubject, KEY_EVENT_VERSIONS, keyEventEnvelope, newId, parseKeyEventData, type Actor, type KeyEvent } from '@keyway/contracts';
import type { OutboxSource } from '@keyway/outbox';
import { isUniqueViolation } from '@keyway/database';
import sql, { join, raw, type Sql, type Value } from 'sql-template-tag';
import type { DecidedEvent, RecordedEvent } from '../keys/key.decider';

/**
 * The event store: one stream per key in `events`, optimistic concurrency on the unique
 * (stream_id, version), and every append one statement. The read-model writes that must commit
 * with the events come in as values (`also`, data-modifying CTEs), so the events, the projection,
 * the credentials and (by the table's statement trigger) the relay's NOTIFY commit together or not
 * at all, in one round trip: a revoke is answered only after this commit.
 *
 * Every event read back goes through the contracts' upcast path (`parseKeyEventData`): stored
 * events are never rewritten, readers bring them to the current schema version.
 */
export type StoredEvent = RecordedEvent & {
  id: string;
  stream_id: string;
  version: number;
  schema_version: number;
  actor: Actor;
};

/** A DataSource, or an EntityManager inside someone's transaction (a new tenant's root key). */
export interface Queryable {
  query(text: string, params?: unknown[]): Promise<unknown>;
}

/** Another writer appended to the stream first; the command handler retries. */
export class StreamVersionConflict extends Error {
  constructor(
    readonly streamId: string,
    readonly expected: number,
  ) {
    super(`stream ${streamId} moved past version ${expected}`);
    this.name = 'StreamVersionConflict';
  }
}

export interface AppendOptions {
  /** Data-modifying statements committed with the events, by CTE name (`e` is the events' own). */
  also?: Readonly<Record<string, Sql>>;
  /** The statement's answer: a SELECT that may read the CTEs. Without it, no rows. */
  returning?: Sql;
}

interface EventRow {
  event_id: string;
  stream_id: string;
  version: number;
  type: StoredEvent['type'];
  schema_version: number;
  tenant_id: string;
  prefix: string;
  actor: Actor;
  data: unknown;
  occurred_at: Date;
}

/** An array parameter (pg sends it as a Postgres array; sql-template-tag 4's Value type leaves arrays out). */
export const pgArray = (values: readonly unknown[]): Value => values as unknown as Value;

const EVENT_COLUMNS = 'event_id, stream_id, version, type, schema_version, tenant_id, prefix, actor, data, occurred_at';

/** A stored row as the current version of its event (upcast and validated). */
function rowToEvent(row: EventRow): StoredEvent {
  return {
    id: row.event_id,
    stream_id: row.stream_id,
    version: row.version,
    type: row.type,
    schema_version: row.schema_version,
    tenant_id: row.tenant_id,
    prefix: row.prefix,
    actor: row.actor,
    data: parseKeyEventData(row.type, row.schema_version, row.data),
    occurred_at: row.occurred_at.toISOString(),
  } as StoredEvent;
}

/** A stored event as the envelope every consumer reads (contracts' one envelope builder). */
function envelopeOf(e: StoredEvent): KeyEvent {
  return keyEventEnvelope({
    id: e.id,
    type: e.type,
    occurred_at: e.occurred_at,
    tenant_id: e.tenant_id,
    key_id: e.stream_id,
    prefix: e.prefix,
    version: e.version,
    actor: e.actor,
    data: e.data,
  } as Omit<KeyEvent, 'schema_version'>);
}

/**
 * The event store is its own outbox: the relay reads `events` below the transaction horizon and
 * publishes each as its envelope on `keyway.keys.<type>`; the table's statement trigger NOTIFYs
 * `keyway_events` at commit.
 */
export const EVENTS_OUTBOX: OutboxSource = {
  table: 'events',
  columns: { id: 'event_id', position: 'global_position', createdAt: 'occurred_at' },
  select: EVENT_COLUMNS,
  channel: 'keyway_events',
  toMessage: (row) => {
    const e = rowToEvent(row as unknown as EventRow);
    return { id: e.id, subject: eventSubject(e.type), payload: JSON.stringify(envelopeOf(e)) };
  },
};

/** Gives decided events their ids, stream versions and envelope fields. */
export function stamp(streamId: string, expectedVersion: number, events: readonly DecidedEvent[], meta: { tenant_id: string; actor: Actor; now: Date }): StoredEvent[] {
  return events.map((e, i) => ({
    ...e,
    id: newId('event'),
    stream_id: streamId,
    version: expectedVersion + i + 1,
    schema_version: KEY_EVENT_VERSIONS[e.type],
    tenant_id: meta.tenant_id,
    actor: meta.actor,
    occurred_at: meta.now.toISOString(),
  })) as StoredEvent[];
}

export class EventStore {
  constructor(private readonly db: Queryable) {}

  /** Another handle on the same store, inside a caller's transaction. */
  within(tx: Queryable): EventStore {
    return new EventStore(tx);
  }

  async read(streamId: string): Promise<StoredEvent[]> {
    const rows = (await this.db.query(`SELECT ${EVENT_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY version`, [streamId])) as EventRow[];
    return rows.map(rowToEvent);
  }

  /** Every event, stream by stream in version order (the rebuild). */
  async readAll(): Promise<StoredEvent[]> {
    const rows = (await this.db.query(`SELECT ${EVENT_COLUMNS} FROM events ORDER BY stream_id, version`)) as EventRow[];
    return rows.map(rowToEvent);
  }

  /**
   * Appends `events` to their streams in one statement with `also`, and answers `returning`.
   * Each stream's events must follow its expected version (`stamp` does that); a writer that lost
   * the race gets StreamVersionConflict for `streamId`. Several new streams may go in one append
   * (group commit of key creation).
   */
  async append<R = never>(streamId: string, expectedVersion: number, events: readonly StoredEvent[], opts: AppendOptions = {}): Promise<R[]> {
    if (events.length === 0) throw new Error('append needs at least one event');
    const ctes = [sql`e AS (${eventsInsert(events)})`, ...Object.entries(opts.also ?? {}).map(([name, s]) => sql`${raw(name)} AS (${s})`)];
    const statement = sql`WITH ${join(ctes, ', ')} ${opts.returning ?? sql`SELECT 1 WHERE false`}`;
    try {
      return (await this.db.query(statement.text, statement.values)) as R[];
    } catch (err) {
      if (isUniqueViolation(err, 'events_stream_version')) throw new StreamVersionConflict(streamId, expectedVersion);
      throw err;
    }
  }
}

function eventsInsert(events: readonly StoredEvent[]): Sql {
  const rows = events.map(
    (e) =>
      sql`(${e.id}, ${e.stream_id}, ${e.version}, ${e.type}, ${e.schema_version}, ${e.tenant_id}, ${e.prefix}, ${JSON.stringify(e.actor)}, ${JSON.stringify(e.data)}, ${e.occurred_at})`,
  );
  return sql`INSERT INTO events (${raw(EVENT_COLUMNS)}) VALUES ${join(rows, ', ')}`;
}

