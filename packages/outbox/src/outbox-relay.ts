import type { JetStreamClient, MinimalLogger } from '@keyway/messaging';
import { Client } from 'pg';

/**
 * How the relay finds the next events. `snapshot` is the correct one: Postgres sequences commit
 * out of order, so a transaction holding position 41 may commit after 42 is visible. Reading only
 * transactions below the oldest one still in flight (pg_snapshot_xmin) and ordering by
 * (transaction_id, position) means nothing can later appear below the checkpoint. `naive-position`
 * (position > last) exists only so a test can show it loses events.
 */
export type RelayReadStrategy = 'snapshot' | 'naive-position';

/** One message to publish: its id is the JetStream message id (a republish is de-duplicated). */
export interface OutboxMessage {
  id: string;
  subject: string;
  payload: string;
}

/**
 * Where the relay reads: any table with a message id, the writing transaction's id (xid8) and a
 * position (bigint), in the service's own database. The generic `outbox` table (outbox-table.ts)
 * has them; identity's event store is its own outbox (`events`, mapped by `toMessage`).
 */
export interface OutboxSource {
  table: string;
  /** Column names; defaults: `id`, `transaction_id`, `position`. */
  columns?: { id?: string; transactionId?: string; position?: string };
  /** Further columns `toMessage` reads; default `subject, payload`. */
  select?: string;
  /** A row as a message; default: the generic outbox's `id`, `subject` and `payload`. */
  toMessage?: (row: Record<string, unknown>) => OutboxMessage;
  /** The channel its NOTIFY trigger signals (see notifyOnInsertSql). */
  channel: string;
  /** Where the relay keeps its checkpoint, by relay name; default `relay_checkpoints`. */
  checkpointTable?: string;
}

// The id is read as `relay_id` (the relay selects it under that name, whatever the column is).
const genericMessage = (row: Record<string, unknown>): OutboxMessage => ({
  id: String(row.relay_id),
  subject: String(row.subject),
  payload: typeof row.payload === 'string' ? row.payload : JSON.stringify(row.payload),
});

export interface RelayOptions {
  databaseUrl: string;
  source: OutboxSource;
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
 * Moves committed outbox rows to JetStream, at least once and in commit order; the message id is
 * the JetStream message id, so a republish after a crash is de-duplicated. Only the replica
 * holding a Postgres advisory lock relays; when it dies its session ends, the lock is released and
 * another replica takes over from the checkpoint. Table-agnostic: see OutboxSource.
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
  private readonly sql: { snapshot: string; naive: string; checkpoint: string; save: string };
  private readonly toMessage: (row: Record<string, unknown>) => OutboxMessage;

  constructor(private readonly opts: RelayOptions) {
    this.name = opts.name ?? 'jetstream';
    this.strategy = opts.strategy ?? 'snapshot';
    this.batchSize = opts.batchSize ?? 500;
    const s = opts.source;
    const id = s.columns?.id ?? 'id';
    const tx = s.columns?.transactionId ?? 'transaction_id';
    const pos = s.columns?.position ?? 'position';
    const cols = `${tx}::text AS relay_tx, ${pos}::text AS relay_position, ${id} AS relay_id, ${s.select ?? 'subject, payload'}`;
    const cp = s.checkpointTable ?? 'relay_checkpoints';
    this.toMessage = s.toMessage ?? genericMessage;
    this.sql = {
      snapshot: `SELECT ${cols} FROM ${s.table}
                  WHERE (${tx}, ${pos}) > ($1::xid8, $2::bigint) AND ${tx} < pg_snapshot_xmin(pg_current_snapshot())
                  ORDER BY ${tx}, ${pos} LIMIT $3`,
      naive: `SELECT ${cols} FROM ${s.table} WHERE ${pos} > $1::bigint ORDER BY ${pos} LIMIT $2`,
      checkpoint: `SELECT last_tx::text AS tx, last_position::text AS position FROM ${cp} WHERE name = $1`,
      save: `INSERT INTO ${cp} (name, last_tx, last_position) VALUES ($1, $2::xid8, $3::bigint)
             ON CONFLICT (name) DO UPDATE SET last_tx = EXCLUDED.last_tx, last_position = EXCLUDED.last_position`,
    };
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
        ? await client.query<Record<string, unknown>>(this.sql.snapshot, [cp.tx, cp.position, this.batchSize])
        : await client.query<Record<string, unknown>>(this.sql.naive, [cp.position, this.batchSize]);
    if (rows.rows.length === 0) return 0;
    // Sent in order on one connection, acknowledged together.
    await Promise.all(
      rows.rows.map((row) => {
        const m = this.toMessage(row);
        return this.opts.js.publish(m.subject, m.payload, { msgID: m.id, timeout: this.opts.publishTimeoutMs ?? 5_000 });
      }),
    );
    const last = rows.rows[rows.rows.length - 1] as { relay_tx: string; relay_position: string };
    await client.query(this.sql.save, [this.name, last.relay_tx, last.relay_position]);
    this.cp = { tx: last.relay_tx, position: last.relay_position };
    this.published += rows.rows.length;
    return rows.rows.length;
  }

  private async checkpoint(client: Client): Promise<Checkpoint> {
    const r = await client.query<{ tx: string; position: string }>(this.sql.checkpoint, [this.name]);
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
    await client.query(`LISTEN ${this.opts.source.channel}`);
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
