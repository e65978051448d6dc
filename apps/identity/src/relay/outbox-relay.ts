import { eventSubject, type KeyEvent } from '@keyway/contracts';
import type { JetStreamClient, MinimalLogger } from '@keyway/messaging';
import { Client } from 'pg';
import { EVENT_COLUMNS, rowToEvent } from '../keys/event-store';

/**
 * How the relay finds the next events. `snapshot` is the correct one: Postgres sequences commit
 * out of order, so a transaction holding position 41 may commit after 42 is visible. Reading only
 * transactions below the oldest one still in flight (pg_snapshot_xmin) and ordering by
 * (transaction_id, position) means nothing can later appear below the checkpoint. `naive-position`
 * (position > last) exists only so a test can show it loses events.
 */
export type RelayReadStrategy = 'snapshot' | 'naive-position';

export interface RelayOptions {
  databaseUrl: string;
  js: JetStreamClient;
  logger: MinimalLogger;
  pollMs: number;
  batchSize?: number;
  strategy?: RelayReadStrategy;
  /** Checkpoint and lock name: one relay per name holds the lock at a time. */
  name?: string;
  publishTimeoutMs?: number;
}

interface Checkpoint {
  tx: string;
  position: string;
}

const LOCK_SQL = `SELECT pg_try_advisory_lock(hashtext('keyway-outbox-relay:' || $1)) AS locked`;

/**
 * Moves committed events from the event store to JetStream, at least once and in commit order;
 * the event id is the JetStream message id, so a republish after a crash is de-duplicated. Only
 * the replica holding a Postgres advisory lock relays; when it dies its session ends, the lock is
 * released and another replica takes over from the checkpoint.
 */
export class OutboxRelay {
  private client: Client | undefined;
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readonly name: string;
  private readonly strategy: RelayReadStrategy;
  private readonly batchSize: number;
  /** Set while this instance holds the lock; tests and health read it. */
  leader = false;
  /** The checkpoint as this leader last wrote it; read again after every (re)connect. */
  private cp: Checkpoint | undefined;
  /** A NOTIFY came since the current batch started. */
  private notified = false;
  private lastNotifyAt = -Infinity;
  published = 0;

  constructor(private readonly opts: RelayOptions) {
    this.name = opts.name ?? 'jetstream';
    this.strategy = opts.strategy ?? 'snapshot';
    this.batchSize = opts.batchSize ?? 500;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    await this.disconnect();
  }

  private async run(): Promise<void> {
    let backoff = 100;
    while (this.running) {
      try {
        if (!this.client) await this.connect();
        if (!this.leader) {
          const rows = await this.client!.query<{ locked: boolean }>(LOCK_SQL, [this.name]);
          this.leader = rows.rows[0]?.locked === true;
          if (!this.leader) {
            await this.sleep(Math.max(this.opts.pollMs, 500));
            continue;
          }
          this.opts.logger.info({ relay: this.name }, 'outbox relay took the lead');
        }
        // A commit that notifies while this batch runs may fall just outside its snapshot: the
        // flag makes the next sleep return at once instead of waiting for the poll.
        this.notified = false;
        const moved = await this.relayBatch();
        backoff = 100;
        if (moved < this.batchSize) await this.sleep(this.idleSleepMs());
      } catch (err) {
        this.opts.logger.warn({ err: (err as Error).message, relay: this.name }, 'outbox relay failed; retrying');
        if (this.client && (err as { code?: string }).code !== undefined) await this.disconnect();
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, 2_000);
      }
    }
  }

  /** Publishes one batch and moves the checkpoint past it; returns how many were published. */
  async relayBatch(): Promise<number> {
    const client = this.client!;
    // The leader is the checkpoint's only writer: after the first read it is known here.
    const cp = (this.cp ??= await this.checkpoint(client));
    const rows =
      this.strategy === 'snapshot'
        ? await client.query(
            `SELECT transaction_id::text AS tx, global_position::text AS position, ${EVENT_COLUMNS}
               FROM events
              WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint)
                AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
              ORDER BY transaction_id, global_position
              LIMIT $3`,
            [cp.tx, cp.position, this.batchSize],
          )
        : await client.query(
            `SELECT transaction_id::text AS tx, global_position::text AS position, ${EVENT_COLUMNS}
               FROM events WHERE global_position > $1::bigint ORDER BY global_position LIMIT $2`,
            [cp.position, this.batchSize],
          );
    if (rows.rows.length === 0) return 0;
    // Sent in order on one connection, acknowledged together.
    await Promise.all(
      rows.rows.map((row) => {
        const e = rowToEvent(row);
        const envelope: KeyEvent = {
          id: e.id,
          type: e.type,
          schema_version: 1,
          occurred_at: e.occurred_at,
          tenant_id: e.tenant_id,
          key_id: e.stream_id,
          prefix: e.prefix,
          actor: e.actor,
          data: e.data,
        } as KeyEvent;
        return this.opts.js.publish(eventSubject(e.type), JSON.stringify(envelope), {
          msgID: e.id,
          timeout: this.opts.publishTimeoutMs ?? 5_000,
        });
      }),
    );
    const last = rows.rows[rows.rows.length - 1] as { tx: string; position: string };
    await client.query(
      `INSERT INTO relay_checkpoints (name, last_tx, last_position) VALUES ($1, $2::xid8, $3::bigint)
       ON CONFLICT (name) DO UPDATE SET last_tx = EXCLUDED.last_tx, last_position = EXCLUDED.last_position`,
      [this.name, last.tx, last.position],
    );
    this.cp = { tx: last.tx, position: last.position };
    this.published += rows.rows.length;
    return rows.rows.length;
  }

  private async checkpoint(client: Client): Promise<Checkpoint> {
    const r = await client.query<{ tx: string; position: string }>(
      `SELECT last_tx::text AS tx, last_position::text AS position FROM relay_checkpoints WHERE name = $1`,
      [this.name],
    );
    return r.rows[0] ?? { tx: '0', position: '0' };
  }

  private async connect(): Promise<void> {
    const client = new Client({ connectionString: this.opts.databaseUrl });
    client.on('error', () => {
      // The session is gone, and with it the lock: start over.
      this.leader = false;
      this.client = undefined;
      this.cp = undefined;
    });
    client.on('notification', () => {
      this.notified = true;
      this.lastNotifyAt = performance.now();
      this.wake?.();
    });
    await client.connect();
    await client.query('LISTEN keyway_events');
    this.client = client;
    this.leader = false;
    this.cp = undefined;
  }

  private async disconnect(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.leader = false;
    this.cp = undefined;
    await client?.end().catch(() => undefined);
  }

  /**
   * How long to wait for more events. A NOTIFY is sent at commit, but the event may stay below
   * the relay's horizon for a moment (pg_snapshot_xmin is cluster-wide: any open transaction on
   * the server holds it back), and its NOTIFY is spent by then: for a second after the last
   * NOTIFY the relay looks again every 10 ms, then falls back to `pollMs`.
   */
  private idleSleepMs(): number {
    return performance.now() - this.lastNotifyAt < 1_000 ? Math.min(this.opts.pollMs, 10) : this.opts.pollMs;
  }

  private sleep(ms: number): Promise<void> {
    if (this.notified) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }
}
