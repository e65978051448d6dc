import type { MinimalLogger } from '@keyway/messaging';
import type { DataSource } from 'typeorm';
import { chainContentOfRow } from '../audit/audit-event';
import type { AuditEventEntity } from '../audit/audit-event.entity';
import { GENESIS, type ChainContent, type ChainKey } from './chain';
import type { HeadPublisher, LinkedHead } from './heads';

/** Most rows linked in one transaction, and most tenants locked in one. */
const MAX_ROWS = 5_000;
const MAX_TENANTS = 1_000;
/** Rows this replica sealed, remembered until linked (beyond this, the oldest are forgotten). */
const MAX_SEALED = 100_000;
/**
 * Least time between two asks for the consumer's ack floor: nats-server 2.9 counts the consumer's
 * pending messages for each, costly with a backlog. Only a gap the rows cannot close needs it.
 */
const FLOOR_EVERY_MS = 100;
/** The advisory lock one linker holds for a round (any constant: the database is audit-log's own). */
export const LINKER_LOCK = 7_361_004;

type UnlinkedRow = Pick<AuditEventEntity, 'id' | 'tenant_id' | 'key_id' | 'type' | 'schema_version' | 'occurred_at' | 'prefix' | 'actor_type' | 'actor_id' | 'data' | 'stream_seq' | 'seal' | 'environment'> & {
  /** The tenant's head (null without a head row: the row is refused). */
  head_position: string | null;
  head_hash: Buffer | null;
  head_seq: string | null;
};
/** The pooled node-postgres client under a TypeORM query runner: several statements in one simple query. */
export interface PgClient {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

/** A row as this replica sealed it at ingest: its content as it arrived, its sequence and seal. */
export interface SealedRow {
  id: string;
  streamSeq: string;
  seal: Buffer;
  content: ChainContent;
}

export interface LinkerOptions {
  ds: DataSource;
  key: ChainKey;
  heads: Pick<HeadPublisher, 'mark'>;
  /**
   * A stream sequence at or below which every message of the consumer is settled: stored, or
   * terminated for good. The durable consumer's ack floor (the server's, so all replicas agree).
   */
  floor: () => Promise<number>;
  idleMs: number;
  /**
   * The shortest gap between two rounds (each reads the floor from the server, and one that finds
   * rows is a transaction of six round trips): rows acked meanwhile are linked together. A round
   * per stored batch linked a few rows each at the same fixed cost (0.36 transactions per event in
   * the bench's drain); at 10 ms a round links up to a hundredth of a second's rows. A round that
   * fills its page is followed at once.
   */
  paceMs: number;
  logger: MinimalLogger;
}

/**
 * Links stored rows into each tenant's chain, in stream order.
 *
 * Writers store rows in whatever order their batches commit (several writers, several replicas,
 * redeliveries). Linking waits for the consumer's ack floor: below it every message is either
 * stored or gone for good, so the rows there, taken in stream-sequence order per tenant, are the
 * order a single reader of the stream would have seen. Linking is a transaction that locks the
 * tenants' head rows (SKIP LOCKED: two replicas split the tenants between them), links every
 * sealed unlinked row at or below the floor, and moves each head. The chain is thus a function of
 * the stream alone: the same whoever links it, and the same again after a rebuild.
 */
export class ChainLinker {
  private stopped = false;
  private wakeUp: (() => void) | undefined;
  private onStop: (() => void) | undefined;
  private woken = false;
  private loop: Promise<void> = Promise.resolve();
  /** Rows refused (no valid seal, or behind the head): logged once each. */
  private readonly refused = new Set<string>();
  /** The last round found another replica linking. */
  private busyElsewhere = false;
  /** When the ack floor was last asked for. */
  private floorAskedAt = 0;
  /** The linker's cursor as last read or written: every row at or below it is linked or refused. */
  private cursor = -1;
  /** The highest stream sequence this replica stored: above the cursor, the floor is polled often. */
  private storedUpTo = 0;
  /** The cursor when the table was last searched for unlinked rows (see unlinkedWaiting). */
  private searchedAt = -1;
  /**
   * Rows this replica sealed and has not linked yet, by id. Such a row, read back with the same
   * sequence and seal, is linked over the content it was sealed with, without checking the seal
   * again (an HMAC, the canonical text and the row's content rebuilt: a third of the chain's CPU
   * per event). Still tamper-evident: were the table's copy edited in between, its link (over
   * what arrived) would not match the table, and verify names it as any edited row. Rows stored
   * by another replica, or written outside the service, get the full check.
   */
  private readonly sealed = new Map<string, SealedRow>();

  constructor(private readonly o: LinkerOptions) {}

  start(): void {
    this.loop = this.run();
  }

  /** A batch was stored (up to stream sequence `seq`, its rows sealed as `rows`): link soon. */
  wake(seq = 0, rows: readonly SealedRow[] = []): void {
    for (const r of rows) this.sealed.set(r.id, r);
    for (const id of this.sealed.keys()) {
      if (this.sealed.size <= MAX_SEALED) break;
      this.sealed.delete(id);
    }
    this.storedUpTo = Math.max(this.storedUpTo, seq);
    this.woken = true;
    this.wakeUp?.();
  }

  /** Rows up to `seq` were linked as they were stored (InsertLinker): the cursor is there now. */
  linkedUpTo(seq: number): void {
    this.cursor = Math.max(this.cursor, seq);
    this.forgetUpTo(String(seq));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeUp?.();
    this.onStop?.();
    await this.loop;
  }

  private async sleep(ms: number): Promise<void> {
    if (this.woken || this.stopped) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.wakeUp = done;
    });
    this.wakeUp = undefined;
  }

  /** Waits `ms` whatever wakes the linker; only stop() cuts it short. */
  private async pause(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.onStop = done;
    });
    this.onStop = undefined;
  }

  private async run(): Promise<void> {
    let lastRound = 0;
    while (!this.stopped) {
      const gap = lastRound + this.o.paceMs - Date.now();
      if (gap > 0) await this.pause(gap);
      if (this.stopped) break;
      lastRound = Date.now();
      this.woken = false;
      try {
        // The ack floor is asked of the server only when a row waits to be linked: nats-server 2.9
        // counts the consumer's pending messages for every info request, and with a backlog of
        // tens of thousands, a poll twice a second slowed delivery to the consumer several-fold.
        // Rows are linked as they are stored while batches continue the chain (InsertLinker).
        if (!(await this.unlinkedWaiting())) {
          await this.sleep(this.o.idleMs);
          continue;
        }
        // Rows that continue the cursor without a gap need no floor: every sequence up to them is
        // stored, so nothing earlier can still arrive (a second replica's batches, mostly).
        this.busyElsewhere = false;
        if ((await this.linkContiguous()) > 0) continue;
        if (this.busyElsewhere) {
          await this.sleep(this.o.paceMs * 2);
          continue;
        }
        // A gap: a message still in flight (its batch commits soon), or one settled without a row
        // (dead-lettered, a republished copy): only the server's ack floor tells them apart.
        // Asked at most every FLOOR_EVERY_MS; meanwhile the paced rounds look for a gapless run.
        if (Date.now() - this.floorAskedAt < FLOOR_EVERY_MS) continue;
        this.floorAskedAt = Date.now();
        const floor = await this.o.floor();
        // Nothing new at or below the floor since the last round: no transaction at all.
        if (floor > this.cursor && (await this.linkUpTo(floor)) > 0) continue;
        if (this.busyElsewhere) {
          await this.sleep(this.o.paceMs * 2);
          continue;
        }
        // Rows this replica stored wait above the floor: their acks are on their way to the server
        // (or, after a crash, their redeliveries): look again at the next round (paced), not at a
        // growing interval, so a busy trail is linked within a round or two of its acks.
        if (this.storedUpTo <= this.cursor) await this.sleep(this.o.idleMs);
      } catch (err) {
        if (this.stopped) break;
        this.o.logger.warn({ err }, 'linking the audit chain failed; retrying');
        await this.sleep(Math.min(this.o.idleMs, 1_000));
      }
    }
  }

  /**
   * A row this replica stored, or any unlinked row, waits above the cursor. The table is searched
   * only once the cursor has stopped moving: while batches are linked as they are stored, none can
   * move it past an unlinked row (a batch continues the cursor only through every sequence in
   * between), so a row left unlinked (another replica's, a crash's) is found once the cursor halts
   * before it, within an idle round. The search reads every row past the cursor, the rows of the
   * batches still being written among them: during a drain it was 23 ms twice a second, the chain's
   * largest cost in Postgres after the heads (5 µs per event).
   */
  private async unlinkedWaiting(): Promise<boolean> {
    if (this.storedUpTo > this.cursor) return true;
    if (this.cursor > this.searchedAt) {
      this.searchedAt = this.cursor;
      if (this.searchedAt > 0) return false;
    }
    const found = (await this.o.ds.query(`SELECT EXISTS (SELECT 1 FROM audit_events WHERE stream_seq > $1 AND chain_pos IS NULL) AS waiting`, [
      Math.max(this.cursor, 0),
    ])) as Array<{ waiting: boolean }>;
    return found[0]?.waiting === true;
  }

  /** Links the unlinked rows that continue the cursor without a gap in their sequences. */
  private async linkContiguous(): Promise<number> {
    let total = 0;
    for (;;) {
      const { linked, read } = await this.linkOnce(undefined);
      total += linked;
      if (read < MAX_ROWS) return total;
    }
  }

  /** Links what lies at or below `floor`, repeating until nothing is left there; returns rows linked. */
  async linkUpTo(floor: number): Promise<number> {
    let total = 0;
    for (;;) {
      const { linked, read } = await this.linkOnce(floor);
      total += linked;
      if (read === 0 || this.cursor >= floor) return total;
    }
  }

  /**
   * One round, four round trips whatever the number of rows and tenants: begin with the turn and
   * the cursor (one simple query); the new rows past the cursor up to the floor (in stream order,
   * through the stream_seq index) with their tenants' heads; one statement that links every row (a
   * HOT update: no index names the chain columns), moves every head and the cursor; commit. Heads
   * are written by the linker alone, under its advisory lock, so they are read without a row lock.
   */
  private async linkOnce(floorOrGapless: number | undefined): Promise<{ linked: number; read: number }> {
    const qr = this.o.ds.createQueryRunner();
    const db = (await qr.connect()) as PgClient;
    const advanced: LinkedHead[] = [];
    let linked = 0;
    let read = 0;
    let open = false;
    try {
      // One linker at a time across replicas: a second one waits its turn instead of spinning.
      // No parameters: the simple protocol runs the statements in one round trip. The cursor in a
      // statement after the lock's: a statement's snapshot is taken as it starts, and one taken
      // before the lock was granted could miss what its last holder committed.
      open = true;
      const begun = (await db.query(
        `BEGIN; SELECT pg_try_advisory_xact_lock(${LINKER_LOCK}) AS mine; SELECT stream_seq AS cursor FROM audit_linker`,
      )) as unknown as Array<{ rows: Array<{ mine?: boolean; cursor?: string | null }> }>;
      const turn = { mine: begun[1]?.rows[0]?.mine === true, cursor: begun[2]?.rows[0]?.cursor ?? null };
      if (!turn.mine) {
        await db.query('COMMIT');
        open = false;
        this.busyElsewhere = true;
        return { linked: 0, read: 0 };
      }
      const cursor = Number(turn.cursor ?? 0);
      // Without a floor: the rows of the next MAX_ROWS sequences, of which the gapless run is linked.
      const gapless = floorOrGapless === undefined;
      const floor = floorOrGapless ?? cursor + MAX_ROWS;
      if (cursor >= floor) {
        await db.query('COMMIT');
        open = false;
        this.cursor = cursor;
        return { linked: 0, read: 0 };
      }
      const rows = (
        await db.query(
          // bigint columns come back as text (pg's default), and are ordered as the numbers they are.
          `SELECT e.*, h.position AS head_position, h.hash AS head_hash, h.stream_seq AS head_seq
           FROM (SELECT id, tenant_id, key_id, type, schema_version, occurred_at, prefix, actor_type, actor_id, data, stream_seq, seal, environment
                 FROM audit_events WHERE stream_seq > $1 AND stream_seq <= $2 AND chain_pos IS NULL
                 ORDER BY stream_seq, id LIMIT ${MAX_ROWS}) e
           LEFT JOIN audit_heads h ON h.tenant_id = e.tenant_id
           ORDER BY e.stream_seq, e.id`,
          [cursor, floor],
        )
      ).rows as UnlinkedRow[];
      let nextCursor: string;
      if (gapless) {
        let run = 0;
        while (run < rows.length && Number(rows[run]!.stream_seq) === cursor + 1 + run) run += 1;
        rows.length = run;
        if (run === 0) {
          await db.query('COMMIT');
          open = false;
          this.cursor = cursor;
          return { linked: 0, read: 0 };
        }
        nextCursor = rows[run - 1]!.stream_seq;
      } else {
        // All of (cursor, floor] when the page was not full; else up to the last row read.
        nextCursor = rows.length === MAX_ROWS ? rows[rows.length - 1]!.stream_seq : String(floor);
      }
      const headOf = new Map<string, { position: number; prev: Buffer; lastSeq: string; live: number; test: number }>();
      for (const r of rows) {
        if (r.head_position !== null && !headOf.has(r.tenant_id)) {
          headOf.set(r.tenant_id, { position: Number(r.head_position), prev: r.head_hash ?? GENESIS, lastSeq: r.head_seq!, live: 0, test: 0 });
        }
      }

      const ids: string[] = [];
      const positions: string[] = [];
      const hashes: Buffer[] = [];
      for (const row of rows) {
        const h = headOf.get(row.tenant_id);
        const mine = this.sealed.get(row.id);
        this.sealed.delete(row.id);
        const known = mine !== undefined && mine.streamSeq === row.stream_seq && row.seal !== null && mine.seal.equals(row.seal);
        const content = known ? mine.content : chainContentOfRow(row);
        if (!h || BigInt(row.stream_seq) <= BigInt(h.lastSeq) || (!known && !this.o.key.sealIsValid(content, row.stream_seq, row.seal))) {
          this.refuse(row);
          continue;
        }
        h.position += 1;
        h.prev = this.o.key.link(h.prev, content, h.position);
        h.lastSeq = row.stream_seq;
        ids.push(row.id);
        positions.push(String(h.position));
        hashes.push(h.prev);
        if (row.environment === 'test') h.test += 1;
        else h.live += 1;
      }
      const head = { tenants: [] as string[], positions: [] as string[], hashes: [] as Buffer[], seqs: [] as string[], live: [] as number[], test: [] as number[] };
      for (const [tenantId, h] of headOf) {
        if (h.live + h.test === 0) continue;
        head.tenants.push(tenantId);
        head.positions.push(String(h.position));
        head.hashes.push(h.prev);
        head.seqs.push(h.lastSeq);
        head.live.push(h.live);
        head.test.push(h.test);
        advanced.push({ tenantId, position: h.position, hash: h.prev });
      }
      await db.query(
        `WITH linked AS (
           UPDATE audit_events e SET chain_pos = u.pos, hash = u.hash, linked_at = clock_timestamp()
           FROM unnest($1::text[], $2::bigint[], $3::bytea[]) AS u(id, pos, hash) WHERE e.id = u.id RETURNING 1),
         moved AS (
           UPDATE audit_heads h SET position = u.pos, hash = u.hash, stream_seq = u.seq,
             live_count = h.live_count + u.live, test_count = h.test_count + u.test
           FROM unnest($4::text[], $5::bigint[], $6::bytea[], $7::bigint[], $8::bigint[], $9::bigint[]) AS u(tenant_id, pos, hash, seq, live, test)
           WHERE h.tenant_id = u.tenant_id RETURNING 1)
         UPDATE audit_linker SET stream_seq = $10`,
        [ids, positions, hashes, head.tenants, head.positions, head.hashes, head.seqs, head.live, head.test, nextCursor],
      );
      await db.query('COMMIT');
      open = false;
      this.forgetUpTo(nextCursor);
      this.cursor = Number(nextCursor);
      linked = ids.length;
      read = rows.length;
    } catch (err) {
      if (open) await db.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      await qr.release();
    }
    this.o.heads.mark(advanced);
    return { linked, read };
  }

  /** Forgets sealed rows at or below `cursor` (linked by another replica, or refused). */
  private forgetUpTo(cursor: string): void {
    const c = Number(cursor);
    // Remembered in the order batches were stored (about stream order): stop at the first newer
    // one rather than walk them all every round; MAX_SEALED bounds what a straggler keeps.
    for (const [id, r] of this.sealed) {
      if (Number(r.streamSeq) > c) break;
      this.sealed.delete(id);
    }
  }

  private refuse(row: UnlinkedRow): void {
    if (this.refused.has(row.id)) return;
    this.refused.add(row.id);
    this.o.logger.error(
      { id: row.id, tenant_id: row.tenant_id, stream_seq: row.stream_seq },
      'an audit row without a valid seal, or behind its chain head, was not linked: written outside the service?',
    );
  }

  /**
   * Rows stored before the chain existed have no seal. While the migration's marker is there (the
   * first boot with a chain key), they are sealed as they are, then the marker goes.
   */
  async sealLegacyRows(): Promise<number> {
    return this.o.ds.transaction(async (m) => {
      const marker = (await m.query(`SELECT pending FROM audit_chain_legacy FOR UPDATE`)) as unknown[];
      if (marker.length === 0) return 0;
      const rows = (await m.query(
        `SELECT id, tenant_id, key_id, type, schema_version, occurred_at, prefix, actor_type, actor_id, data, stream_seq
         FROM audit_events WHERE seal IS NULL AND chain_pos IS NULL`,
      )) as UnlinkedRow[];
      for (let i = 0; i < rows.length; i += MAX_ROWS) {
        const part = rows.slice(i, i + MAX_ROWS);
        await m.query(`UPDATE audit_events e SET seal = u.seal FROM unnest($1::text[], $2::bytea[]) AS u(id, seal) WHERE e.id = u.id`, [
          part.map((r) => r.id),
          part.map((r) => this.o.key.seal(chainContentOfRow(r), r.stream_seq)),
        ]);
      }
      await m.query(`DELETE FROM audit_chain_legacy`);
      return rows.length;
    });
  }
}
