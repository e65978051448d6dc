import type { RelayOutboxStatus, RelayStatus } from '@keyway/contracts';
import { Injectable } from '@nestjs/common';
import { hostname } from 'node:os';
import { DataSource } from 'typeorm';
import { MEMBER_OUTBOX_TABLE } from '../migrations/1796083400000-members-and-sessions';

/**
 * This replica's name in Postgres (`application_name`, from PGAPPNAME, which main.ts sets before
 * any connection): the relay's session carries it, so the lock's holder names its replica.
 */
export const REPLICA_NAME = `keyway-identity ${hostname()}:${process.pid}`.slice(0, 63);

/**
 * Identity's outboxes as OutboxRelay (packages/outbox) reads them: its table, columns, and the
 * relay name that keys its checkpoint (`relay_checkpoints`) and its advisory lock. Read here with
 * SQL only, so the relay's own code is not touched.
 */
const OUTBOXES = [
  { name: 'jetstream', table: 'events', tx: 'transaction_id', position: 'global_position', createdAt: 'occurred_at' },
  { name: 'members', table: MEMBER_OUTBOX_TABLE, tx: 'transaction_id', position: 'position', createdAt: 'created_at' },
] as const;

/** OutboxRelay's lock: `pg_try_advisory_lock(hashtext('keyway-outbox-relay:' || name))`. */
const LEADER_SQL = `
  WITH k AS (SELECT hashtext('keyway-outbox-relay:' || $1)::bigint AS key)
  SELECT a.pid, a.application_name, host(a.client_addr) AS addr, a.client_port AS port, a.backend_start
    FROM k, pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
   WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
     AND l.classid::bigint = ((k.key >> 32) & 4294967295) AND l.objid::bigint = (k.key & 4294967295)
   LIMIT 1`;

/**
 * `GET /admin/v1/relay`: per outbox, what waits (rows past the relay's checkpoint), since when,
 * and which session holds the relay's lock. Counted up to 10,000,000 (as the relay's own metric).
 */
@Injectable()
export class RelayStatusReader {
  private createdAtColumns: Promise<Set<string>> | undefined;

  constructor(private readonly ds: DataSource) {}

  async status(): Promise<RelayStatus> {
    const relays: RelayOutboxStatus[] = [];
    for (const o of OUTBOXES) relays.push(await this.outbox(o));
    return { relays, answered_by: REPLICA_NAME };
  }

  private async outbox(o: (typeof OUTBOXES)[number]): Promise<RelayOutboxStatus> {
    // A generic outbox gains `created_at` with the relay's sequence migration: until then no age.
    const written = (await this.tablesWithCreatedAt()).has(`${o.table}.${o.createdAt}`) ? o.createdAt : 'NULL::timestamptz';
    const [waiting] = (await this.ds.query(
      `SELECT count(*)::int AS backlog, min(written) AS oldest, now() AS now
         FROM (SELECT ${written} AS written FROM ${o.table}
                WHERE (${o.tx}, ${o.position}) > (
                        COALESCE((SELECT last_tx FROM relay_checkpoints WHERE name = $1), '0'::xid8),
                        COALESCE((SELECT last_position FROM relay_checkpoints WHERE name = $1), 0))
                LIMIT 10000000) AS w`,
      [o.name],
    )) as Array<{ backlog: number; oldest: Date | null; now: Date }>;
    const [lock] = (await this.ds.query(LEADER_SQL, [o.name])) as Array<{ pid: number; application_name: string; addr: string | null; port: number | null; backend_start: Date | null }>;
    const oldest = waiting?.oldest ?? null;
    return {
      name: o.name,
      backlog: waiting?.backlog ?? 0,
      oldest_unpublished_at: oldest?.toISOString() ?? null,
      lag_seconds: oldest && waiting ? Math.max(0, Math.round((waiting.now.getTime() - oldest.getTime()) / 100) / 10) : 0,
      leader: lock
        ? {
            replica: lock.application_name.startsWith('keyway-identity ') ? lock.application_name.slice('keyway-identity '.length) : null,
            client: lock.addr === null ? null : `${lock.addr}:${lock.port ?? ''}`,
            pid: lock.pid,
            since: lock.backend_start?.toISOString() ?? null,
          }
        : null,
    };
  }

  private tablesWithCreatedAt(): Promise<Set<string>> {
    this.createdAtColumns ??= (
      this.ds.query(
        `SELECT table_name || '.' || column_name AS c FROM information_schema.columns
          WHERE table_schema = current_schema() AND (table_name, column_name) IN (${OUTBOXES.map((o) => `('${o.table}', '${o.createdAt}')`).join(', ')})`,
      ) as Promise<Array<{ c: string }>>
    ).then((rows) => new Set(rows.map((r) => r.c)));
    const cached = this.createdAtColumns;
    // Not cached while the column is missing: a migration may add it while this replica runs.
    void cached.then((s) => {
      if (s.size < OUTBOXES.length) this.createdAtColumns = undefined;
    });
    return cached;
  }
}
