import type { JetStreamClient, MinimalLogger } from '@keyway/messaging';
import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Client } from 'pg';
import { relayMetrics, type BacklogSource } from './relay-metrics';

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
  /**
   * Column names; defaults: `id`, `transaction_id`, `position`, `stream_seq` (the JetStream
   * sequence that acknowledged the row, written by the relay: see relaySequenceSql) and
   * `created_at` (when the row was written, for the commit → ack lag).
   */
  columns?: { id?: string; transactionId?: string; position?: string; streamSeq?: string; createdAt?: string };
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
  /**
   * The stream the rows land in, checked for losses. Default: the stream that captures the last
   * relayed row's subject (JetStreamManager.streams.find).
   */
  stream?: string;
  /** How often the leader checks the stream still holds what it acknowledged (30000), besides every reconnect. */
  verifyIntervalMs?: number;
}

interface Checkpoint {
  tx: string;
  position: string;
}

/** What a loss check found: how many relayed rows the stream no longer holds. */
export interface LossCheck {
  stream: string;
  lost: number;
  /** The stream's last sequence when checked. */
  lastSeq: number;
}

const MSG_ID_HEADER = 'Nats-Msg-Id';

/** Relay order: (transaction id, position), both 64-bit, compared exactly. */
function before(a: Checkpoint, b: Checkpoint): boolean {
  const [at, bt] = [BigInt(a.tx), BigInt(b.tx)];
  return at < bt || (at === bt && BigInt(a.position) < BigInt(b.position));
}

interface WalkRow {
  walk_tx: string;
  walk_position: string;
  walk_id: string;
  walk_seq: string | null;
}

const WALK_PAGE = 500;

const LOCK_SQL = `SELECT pg_try_advisory_lock(hashtext('keyway-outbox-relay:' || $1)) AS locked`;

/**
 * Moves committed outbox rows to JetStream, at least once and in commit order; the message id is
 * the JetStream message id, so a republish after a crash is de-duplicated. Only the replica
 * holding a Postgres advisory lock relays; when it dies its session ends, the lock is released and
 * another replica takes over from the checkpoint. Table-agnostic: see OutboxSource.
 *
 * It does not trust the broker's disk: each row keeps the stream sequence that acknowledged it.
 * When it takes the lead, when NATS reconnects, after a failed publish and every
 * `verifyIntervalMs`, it reads the stream back from the newest relayed row: a row whose sequence
 * is past the stream's end, or whose message there carries another message id (or none), was lost
 * (an fsync that never happened, a restore from an old backup). Losses are a tail of each relay's
 * order, so it walks back to the newest row the stream still holds, rewinds its cursor there and
 * relays again from it: the lost rows go out again in their original order, before anything new,
 * and get their new sequences. Message-id de-duplication is never relied on for this: it covers
 * only the duplicate window, and the restored stream has forgotten what it lost.
 */
export class OutboxRelay implements BacklogSource {
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
  /** Rows republished after a detected loss, and losses detected (also in the metrics). */
  repaired = 0;
  lossesDetected = 0;
  /** Set when the stream must be read back before relaying on: see the class comment. */
  private needsCheck = true;
  private lastCheckAt = -Infinity;
  /** While repairing: rows up to here (the checkpoint when the loss was found) are republished ones. */
  private repairUntil: Checkpoint | undefined;
  private streamName: string | undefined;
  private jsm: JetStreamManager | undefined;
  private watchingStatus = false;
  /** Counts NATS disconnects and reconnects: a batch that straddles one is not recorded. */
  private connGen = 0;
  /** The highest sequence this relay has seen acknowledged: a lower ack means the stream went back. */
  private lastAckSeq = 0;
  private readonly sql: { snapshot: string; naive: string; checkpoint: string; save: string; walk: string; walkFrom: string; walkRow: string; backlog: string };
  private readonly toMessage: (row: Record<string, unknown>) => OutboxMessage;

  get outboxName(): string {
    return this.name;
  }

  constructor(private readonly opts: RelayOptions) {
    this.name = opts.name ?? 'jetstream';
    this.streamName = opts.stream;
    this.strategy = opts.strategy ?? 'snapshot';
    this.batchSize = opts.batchSize ?? 500;
    const s = opts.source;
    const id = s.columns?.id ?? 'id';
    const tx = s.columns?.transactionId ?? 'transaction_id';
    const pos = s.columns?.position ?? 'position';
    const seq = s.columns?.streamSeq ?? 'stream_seq';
    const created = s.columns?.createdAt ?? 'created_at';
    const cols =
      `${tx}::text AS relay_tx, ${pos}::text AS relay_position, ${id} AS relay_id, ` +
      `extract(epoch FROM ${created})::float8 AS relay_created_at, ${s.select ?? 'subject, payload'}`;
    // Aliases that name no column: ORDER BY would take an output column `position` (text) first.
    const walkCols = `${tx}::text AS walk_tx, ${pos}::text AS walk_position, ${id} AS walk_id, ${seq}::text AS walk_seq`;
    const cp = s.checkpointTable ?? 'relay_checkpoints';
    this.toMessage = s.toMessage ?? genericMessage;
    this.sql = {
      snapshot: `SELECT ${cols} FROM ${s.table}
                  WHERE (${tx}, ${pos}) > ($1::xid8, $2::bigint) AND ${tx} < pg_snapshot_xmin(pg_current_snapshot())
                  ORDER BY ${tx}, ${pos} LIMIT $3`,
      naive: `SELECT ${cols} FROM ${s.table} WHERE ${pos} > $1::bigint ORDER BY ${pos} LIMIT $2`,
      checkpoint: `SELECT last_tx::text AS tx, last_position::text AS position FROM ${cp} WHERE name = $1`,
      // The sequences and the checkpoint move together, in one statement: a row is past the
      // checkpoint exactly when its acknowledgement is recorded.
      save: `WITH recorded AS (
               UPDATE ${s.table} SET ${seq} = acked.seq
               FROM unnest($4::text[], $5::bigint[]) AS acked(id, seq) WHERE ${s.table}.${id} = acked.id)
             INSERT INTO ${cp} (name, last_tx, last_position) VALUES ($1, $2::xid8, $3::bigint)
             ON CONFLICT (name) DO UPDATE SET last_tx = EXCLUDED.last_tx, last_position = EXCLUDED.last_position`,
      // Newest first from the checkpoint (inclusive), then strictly below the last row seen.
      walkFrom: `SELECT ${walkCols} FROM ${s.table} WHERE (${tx}, ${pos}) <= ($1::xid8, $2::bigint) ORDER BY ${tx} DESC, ${pos} DESC LIMIT $3`,
      walk: `SELECT ${walkCols} FROM ${s.table} WHERE (${tx}, ${pos}) < ($1::xid8, $2::bigint) ORDER BY ${tx} DESC, ${pos} DESC LIMIT $3`,
      walkRow: `SELECT ${cols} FROM ${s.table} WHERE (${tx}, ${pos}) = ($1::xid8, $2::bigint)`,
      backlog: `SELECT count(*)::int AS n FROM (SELECT 1 FROM ${s.table} WHERE (${tx}, ${pos}) > ($1::xid8, $2::bigint) LIMIT 10000000) AS b`,
    };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    relayMetrics.addSource(this);
    relayMetrics.leader.set({ outbox: this.name }, 0);
    this.watchReconnects();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    await this.disconnect();
    relayMetrics.removeSource(this);
  }

  /** Rows not yet acknowledged, as this leader sees them (undefined on a replica that does not relay). */
  async backlog(): Promise<number | undefined> {
    const client = this.client;
    if (!this.leader || !client || !this.cp) return undefined;
    const r = await client.query<{ n: number }>(this.sql.backlog, [this.cp.tx, this.cp.position]);
    return r.rows[0]?.n ?? 0;
  }

  /** Marks the stream to be read back before the next batch, and wakes the loop. */
  requestCheck(): void {
    this.needsCheck = true;
    this.wake?.();
  }

  /**
   * NATS coming back (a restart, a failover, a restore) is when a loss shows: check then. The
   * @nats-io/jetstream client carries its connection as `nc`.
   */
  private watchReconnects(): void {
    const nc = (this.opts.js as unknown as { nc?: NatsConnection }).nc;
    if (this.watchingStatus || typeof nc?.status !== 'function') return;
    this.watchingStatus = true;
    void (async () => {
      for await (const s of nc.status()) {
        if (!this.running) break;
        if (s.type === 'disconnect' || s.type === 'reconnect') this.connGen++;
        if (s.type === 'reconnect') this.requestCheck();
      }
    })()
      .catch(() => undefined)
      .finally(() => (this.watchingStatus = false));
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
          relayMetrics.leader.set({ outbox: this.name }, 1);
          this.needsCheck = true;
        }
        if (this.needsCheck || performance.now() - this.lastCheckAt > (this.opts.verifyIntervalMs ?? 30_000)) {
          await this.checkStream();
        }
        // A commit that notifies while this batch runs may fall just outside its snapshot: the
        // flag makes the next sleep return at once instead of waiting for the poll.
        this.notified = false;
        const moved = await this.relayBatch();
        backoff = 100;
        if (moved < this.batchSize) await this.sleep(this.idleSleepMs());
      } catch (err) {
        this.opts.logger.warn({ err: (err as Error).message, relay: this.name }, 'outbox relay failed; retrying');
        // A failed publish may mean NATS restarted: read the stream back before going on. Only a
        // Postgres error (a string SQLSTATE) drops the session; JetStream's codes are numbers.
        this.needsCheck = true;
        if (this.client && typeof (err as { code?: unknown }).code === 'string') await this.disconnect();
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
    const gen = this.connGen;
    const acks = await Promise.all(
      rows.rows.map((row) => {
        const m = this.toMessage(row);
        return this.opts.js.publish(m.subject, m.payload, { msgID: m.id, timeout: this.opts.publishTimeoutMs ?? 5_000 });
      }),
    );
    // A batch that straddled a reconnect, or acknowledged below what this relay saw before (the
    // stream went back: a restore, a lost fsync), may have landed after a loss this relay has not
    // read yet: it is not recorded, and the stream is read back from the checkpoint first.
    // (A duplicate's ack names the sequence the stream stored it at earlier: not a step back.)
    if (gen !== this.connGen || acks.some((a) => !a.duplicate && a.seq <= this.lastAckSeq)) {
      this.needsCheck = true;
      this.lastAckSeq = 0;
      throw new Error('NATS reconnected or its stream went back during the batch: reading the stream back first');
    }
    this.lastAckSeq = Math.max(this.lastAckSeq, ...acks.map((a) => a.seq));
    const ackedAt = Date.now() / 1000;
    const ids = rows.rows.map((r) => String(r.relay_id));
    const seqs = acks.map((a) => String(a.seq));
    const last = rows.rows[rows.rows.length - 1] as { relay_tx: string; relay_position: string };
    await client.query(this.sql.save, [this.name, last.relay_tx, last.relay_position, ids, seqs]);
    this.streamName ??= acks[0]?.stream;
    this.cp = { tx: last.relay_tx, position: last.relay_position };
    this.published += rows.rows.length;
    let repaired = 0;
    for (const row of rows.rows) {
      const at = { tx: String(row.relay_tx), position: String(row.relay_position) };
      if (this.repairUntil && !before(this.repairUntil, at)) repaired++;
      else if (typeof row.relay_created_at === 'number') relayMetrics.lag.observe({ outbox: this.name }, Math.max(0, ackedAt - row.relay_created_at));
    }
    if (repaired > 0) {
      this.repaired += repaired;
      relayMetrics.repaired.inc({ outbox: this.name }, repaired);
    }
    if (this.repairUntil && !before(this.cp, this.repairUntil)) {
      this.opts.logger.info({ relay: this.name, repaired: this.repaired }, 'outbox relay republished what the stream had lost');
      this.repairUntil = undefined;
    }
    return rows.rows.length;
  }

  /**
   * Reads the stream back from the newest relayed row (see the class comment). When it lost rows,
   * rewinds the cursor to the newest row it still holds, so the next batches republish the rest
   * in order before anything new. Returns what it found (tests and the bench read it).
   */
  async checkStream(): Promise<LossCheck | undefined> {
    const client = this.client!;
    const cp = (this.cp ??= await this.checkpoint(client));
    let rows = (await client.query<WalkRow>(this.sql.walkFrom, [cp.tx, cp.position, WALK_PAGE])).rows;
    const newest = rows[0];
    if (!newest?.walk_seq) {
      // Nothing relayed yet, or only before sequences were recorded: nothing to compare.
      this.checked();
      return undefined;
    }
    const jsm = (this.jsm ??= await this.opts.js.jetstreamManager());
    const stream = (this.streamName ??= await jsm.streams.find((await this.messageAt(client, newest)).subject));
    const { state } = await jsm.streams.info(stream);
    const holds = async (r: WalkRow): Promise<boolean | 'unknown'> => {
      // Before sequences were recorded, or removed by the stream's own limits (a purge, max_age):
      // not a loss this relay can judge, and everything older is the same.
      if (r.walk_seq === null || Number(r.walk_seq) < state.first_seq) return 'unknown';
      if (Number(r.walk_seq) > state.last_seq) return false;
      const m = await jsm.streams.getMessage(stream, { seq: Number(r.walk_seq) });
      return m?.header?.get(MSG_ID_HEADER) === r.walk_id;
    };
    let lost = 0;
    let keep: Checkpoint = { tx: '0', position: '0' };
    walk: while (rows.length > 0) {
      for (const r of rows) {
        if ((await holds(r)) !== false) {
          keep = { tx: r.walk_tx, position: r.walk_position };
          break walk;
        }
        lost++;
      }
      const oldest = rows[rows.length - 1]!;
      rows = (await client.query<WalkRow>(this.sql.walk, [oldest.walk_tx, oldest.walk_position, WALK_PAGE])).rows;
    }
    this.checked();
    if (lost === 0) {
      this.lastAckSeq = Number(newest.walk_seq);
      return { stream, lost, lastSeq: state.last_seq };
    }
    this.lastAckSeq = 0;
    this.lossesDetected++;
    relayMetrics.lossDetected.inc({ outbox: this.name });
    this.opts.logger.error(
      { relay: this.name, stream, lost, stream_last_seq: state.last_seq, recorded_last_seq: Number(newest.walk_seq) },
      'JetStream lost events it had acknowledged: republishing them, in order, before anything new',
    );
    // The lost rows are the ones after `keep`: relaying from there sends them again in order.
    this.repairUntil = this.repairUntil && before(cp, this.repairUntil) ? this.repairUntil : cp;
    this.cp = keep;
    return { stream, lost, lastSeq: state.last_seq };
  }

  private checked(): void {
    this.needsCheck = false;
    this.lastCheckAt = performance.now();
  }

  /** The full row (for its subject) of a walked one. */
  private async messageAt(client: Client, r: WalkRow): Promise<OutboxMessage> {
    const row = (await client.query<Record<string, unknown>>(this.sql.walkRow, [r.walk_tx, r.walk_position])).rows[0];
    if (!row) throw new Error(`outbox row ${r.walk_id} vanished`);
    return this.toMessage(row);
  }

  private async checkpoint(client: Client): Promise<Checkpoint> {
    const r = await client.query<{ tx: string; position: string }>(this.sql.checkpoint, [this.name]);
    return r.rows[0] ?? { tx: '0', position: '0' };
  }

  private async connect(): Promise<void> {
    const client = new Client({ connectionString: this.opts.databaseUrl });
    client.on('error', () => {
      // The session is gone, and with it the lock: start over.
      if (this.leader) relayMetrics.leader.set({ outbox: this.name }, 0);
      this.leader = false;
      this.repairUntil = undefined;
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
    if (this.leader) relayMetrics.leader.set({ outbox: this.name }, 0);
    this.leader = false;
    this.cp = undefined;
    this.repairUntil = undefined;
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
