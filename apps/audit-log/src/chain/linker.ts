import type { MinimalLogger } from '@keyway/messaging';
import type { DataSource } from 'typeorm';
import { chainContentOfRow } from '../audit/audit-event';
import type { AuditEventEntity } from '../audit/audit-event.entity';
import { GENESIS, type ChainKey } from './chain';
import type { HeadPublisher, LinkedHead } from './heads';

/** Most rows linked in one transaction, and most tenants locked in one. */
const MAX_ROWS = 5_000;
const MAX_TENANTS = 1_000;
/** How often the ack floor is read while stored rows wait above it. */
const PENDING_POLL_MS = 5;
/** The advisory lock one linker holds for a round (any constant: the database is audit-log's own). */
const LINKER_LOCK = 7_361_004;

type UnlinkedRow = Pick<AuditEventEntity, 'id' | 'tenant_id' | 'key_id' | 'type' | 'schema_version' | 'occurred_at' | 'prefix' | 'actor_type' | 'actor_id' | 'data' | 'stream_seq' | 'seal' | 'environment'>;
interface HeadRow {
  tenant_id: string;
  position: string;
  hash: Buffer | null;
  stream_seq: string;
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
  private woken = false;
  private loop: Promise<void> = Promise.resolve();
  /** Rows refused (no valid seal, or behind the head): logged once each. */
  private readonly refused = new Set<string>();
  /** The last round found another replica linking. */
  private busyElsewhere = false;
  /** The linker's cursor as last read or written: every row at or below it is linked or refused. */
  private cursor = -1;
  /** The highest stream sequence this replica stored: above the cursor, the floor is polled often. */
  private storedUpTo = 0;

  constructor(private readonly o: LinkerOptions) {}

  start(): void {
    this.loop = this.run();
  }

  /** A batch was stored (up to stream sequence `seq`): link soon. */
  wake(seq = 0): void {
    this.storedUpTo = Math.max(this.storedUpTo, seq);
    this.woken = true;
    this.wakeUp?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeUp?.();
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

  private async run(): Promise<void> {
    while (!this.stopped) {
      this.woken = false;
      try {
        const floor = await this.o.floor();
        this.busyElsewhere = false;
        // Nothing new at or below the floor since the last round: no transaction at all.
        if (floor > this.cursor && (await this.linkUpTo(floor)) > 0) continue;
        if (this.busyElsewhere) {
          await this.sleep(PENDING_POLL_MS * 4);
          continue;
        }
        // Rows this replica stored wait above the floor: their acks are on their way to the server
        // (or, after a crash, their redeliveries): look again soon, at a steady pace, not a growing
        // one, so a busy trail is linked within milliseconds of its acks.
        await this.sleep(this.storedUpTo > this.cursor ? PENDING_POLL_MS : this.o.idleMs);
      } catch (err) {
        if (this.stopped) break;
        this.o.logger.warn({ err }, 'linking the audit chain failed; retrying');
        await this.sleep(Math.min(this.o.idleMs, 1_000));
      }
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
   * One round, six round trips whatever the number of rows and tenants: the turn and the cursor;
   * the new rows past the cursor up to the floor (in stream order, through the stream_seq index);
   * their tenants' heads, locked; one statement that links every row (a HOT update: no index names
   * the chain columns), moves every head and the cursor; begin and commit.
   */
  private async linkOnce(floor: number): Promise<{ linked: number; read: number }> {
    const qr = this.o.ds.createQueryRunner();
    await qr.connect();
    const advanced: LinkedHead[] = [];
    let linked = 0;
    let read = 0;
    try {
      await qr.startTransaction();
      // One linker at a time across replicas: a second one waits its turn instead of spinning.
      const turn = (await qr.query(`SELECT pg_try_advisory_xact_lock(${LINKER_LOCK}) AS mine, (SELECT stream_seq FROM audit_linker) AS cursor`)) as Array<{
        mine: boolean;
        cursor: string | null;
      }>;
      if (!turn[0]?.mine) {
        await qr.commitTransaction();
        this.busyElsewhere = true;
        return { linked: 0, read: 0 };
      }
      const cursor = Number(turn[0].cursor ?? 0);
      if (cursor >= floor) {
        await qr.commitTransaction();
        this.cursor = cursor;
        return { linked: 0, read: 0 };
      }
      const rows = (await qr.query(
        // bigint columns come back as text (pg's default), and are ordered as the numbers they are.
        `SELECT id, tenant_id, key_id, type, schema_version, occurred_at, prefix, actor_type, actor_id, data, stream_seq, seal, environment
         FROM audit_events WHERE stream_seq > $1 AND stream_seq <= $2 AND chain_pos IS NULL
         ORDER BY stream_seq, id LIMIT ${MAX_ROWS}`,
        [cursor, floor],
      )) as UnlinkedRow[];
      // All of (cursor, floor] when the page was not full; else up to the last row read.
      const nextCursor = rows.length === MAX_ROWS ? rows[rows.length - 1]!.stream_seq : String(floor);
      const tenants = [...new Set(rows.map((r) => r.tenant_id))].sort();
      const heads = (
        tenants.length === 0
          ? []
          : await qr.query(`SELECT tenant_id, position, hash, stream_seq FROM audit_heads WHERE tenant_id = ANY($1) ORDER BY tenant_id FOR UPDATE`, [tenants])
      ) as HeadRow[];
      const headOf = new Map(heads.map((h) => [h.tenant_id, { position: Number(h.position), prev: h.hash ?? GENESIS, lastSeq: h.stream_seq, live: 0, test: 0 }]));

      const ids: string[] = [];
      const positions: string[] = [];
      const hashes: Buffer[] = [];
      for (const row of rows) {
        const h = headOf.get(row.tenant_id);
        const content = chainContentOfRow(row);
        if (!h || BigInt(row.stream_seq) <= BigInt(h.lastSeq) || !this.o.key.sealIsValid(content, row.stream_seq, row.seal)) {
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
      await qr.query(
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
      await qr.commitTransaction();
      this.cursor = Number(nextCursor);
      linked = ids.length;
      read = rows.length;
    } catch (err) {
      if (qr.isTransactionActive) await qr.rollbackTransaction().catch(() => undefined);
      throw err;
    } finally {
      await qr.release();
    }
    this.o.heads.mark(advanced);
    return { linked, read };
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
