import type { DataSource } from 'typeorm';
import { pushRow, rowColumns, type AuditRecord } from '../audit/audit-event';
import { GENESIS, type ChainKey } from './chain';
import type { HeadPublisher, LinkedHead } from './heads';
import { LINKER_LOCK, type PgClient, type SealedRow } from './linker';

/** Tenants' heads kept between batches (beyond this, forgotten and read again). */
const MAX_CACHED_HEADS = 100_000;

interface Head {
  position: number;
  hash: Buffer;
  lastSeq: number;
}

/** A head a batch moved: published once committed, and cached with its last sequence. */
type MovedHead = LinkedHead & { lastSeq: number };

/** Stores rows unlinked and sealed (the repository's batch insert), on the given client. */
export type StoreUnlinked = (records: readonly AuditRecord[], query: PgClient['query']) => Promise<SealedRow[]>;

export interface InsertLinkerOptions {
  ds: DataSource;
  key: ChainKey;
  heads: Pick<HeadPublisher, 'mark'>;
  storeUnlinked: StoreUnlinked;
  /** The linker's cursor moved to `seq` (rows at or below it are linked). */
  linkedUpTo: (seq: number) => void;
  /** Rows were stored unlinked, up to `seq`: the floor-paced linker links them. */
  storedUnlinked: (seq: number, rows: readonly SealedRow[]) => void;
}

export interface StoredBatch {
  /** Rows linked as they were inserted. */
  linked: number;
  /** Rows stored unlinked, for the floor-paced linker. */
  unlinked: number;
}

const LINKED_INSERT = `
  WITH stored AS (
    INSERT INTO audit_events
      (id, tenant_id, key_id, type, schema_version, occurred_at, prefix, actor_type, actor_id, data, stream_seq, chain_pos, hash, linked_at)
    SELECT u.*, clock_timestamp() FROM unnest(
      $1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::timestamptz[],
      $7::text[], $8::text[], $9::text[], $10::jsonb[], $11::bigint[], $12::bigint[], $13::bytea[]) AS u
    ON CONFLICT (id) DO NOTHING
    RETURNING 1),
  moved AS (
    UPDATE audit_heads h SET position = u.pos, hash = u.hash, stream_seq = u.seq,
      live_count = h.live_count + u.live, test_count = h.test_count + u.test
    FROM unnest($14::text[], $15::bigint[], $16::bytea[], $17::bigint[], $18::bigint[], $19::bigint[]) AS u(tenant_id, pos, hash, seq, live, test)
    WHERE h.tenant_id = u.tenant_id),
  born AS (
    INSERT INTO audit_heads AS h (tenant_id, position, hash, stream_seq, live_count, test_count)
    SELECT * FROM unnest($20::text[], $21::bigint[], $22::bytea[], $23::bigint[], $24::bigint[], $25::bigint[])
    ON CONFLICT (tenant_id) DO UPDATE SET position = EXCLUDED.position, hash = EXCLUDED.hash, stream_seq = EXCLUDED.stream_seq,
      live_count = h.live_count + EXCLUDED.live_count, test_count = h.test_count + EXCLUDED.test_count),
  cursor AS (UPDATE audit_linker SET stream_seq = $26)
  SELECT count(*)::int AS stored FROM stored`;

/**
 * Links rows as they are stored, when the batch continues the chain: one write per row instead of
 * an insert and, later, the linker's update of the same row (which also read it back).
 *
 * The chain is in stream order per tenant, and only the floor-paced linker (ChainLinker) can know
 * that every earlier message was settled when rows arrive from several writers and replicas. But
 * a batch whose stream sequences run on without a gap from the linker's cursor (every row at or
 * below it linked or refused) holds exactly the next messages of the stream: nothing earlier can
 * still arrive, since an earlier message would be at or below the cursor. Such a batch is linked
 * in the transaction that stores it, under the linker's advisory lock (so the cursor, the heads
 * and the rows move together, and no other linker runs meanwhile). Whatever does not continue the
 * cursor (a batch overtaking a slower one, one behind a message set aside for a retry, a second
 * replica's) is stored unlinked and sealed, as before, and the floor-paced linker links it. Both
 * give the same chain: each is a function of the stream alone.
 *
 * Batches of this replica take their turn in the order the consumer handed them out, so its
 * batches continue each other. Heads are cached between batches while the cursor is where this
 * replica left it; anyone else moving it (another replica, the floor-paced linker) means they are
 * read again.
 */
export class InsertLinker {
  private turn: Promise<unknown> = Promise.resolve();
  private readonly heads = new Map<string, Head>();
  /** The cursor the cached heads belong to (-1: none). */
  private cachedAt = -1;

  constructor(private readonly o: InsertLinkerOptions) {}

  /**
   * Stores a batch: `records` (the lifecycle events in it) and `settled`, the stream sequence of
   * every message of the batch (trail events or not: each is settled once this batch commits).
   */
  store(records: readonly AuditRecord[], settled: readonly number[]): Promise<StoredBatch> {
    const mine = this.turn.then(() => this.storeNow(records, settled));
    this.turn = mine.catch(() => undefined);
    return mine;
  }

  private async storeNow(records: readonly AuditRecord[], settled: readonly number[]): Promise<StoredBatch> {
    const qr = this.o.ds.createQueryRunner();
    const db = (await qr.connect()) as PgClient;
    let open = false;
    let advanced: MovedHead[] = [];
    let result: StoredBatch;
    let cursorAfter = -1;
    let unlinkedRows: SealedRow[] = [];
    let unlinkedUpTo = 0;
    try {
      open = true;
      // Waits for a linker round or another replica's batch to commit (each a few milliseconds).
      // The cursor in a statement of its own, after the lock: its snapshot sees what the previous
      // holder committed.
      const begun = (await db.query(`BEGIN; SELECT pg_advisory_xact_lock(${LINKER_LOCK}); SELECT stream_seq AS cursor FROM audit_linker`)) as unknown as Array<{
        rows: Array<{ cursor: string | null }>;
      }>;
      const cursor = Number(begun[2]?.rows[0]?.cursor ?? 0);
      if (cursor !== this.cachedAt) this.heads.clear();

      // How far the batch continues the cursor without a gap.
      const seqs = new Set(settled);
      let end = cursor;
      while (seqs.has(end + 1)) end += 1;

      const plan = end > cursor ? await this.plan(db, records, cursor, end) : undefined;
      if (plan) {
        const r = (await db.query(LINKED_INSERT, [...plan.columns, ...plan.known, ...plan.born, end])) as { rows: Array<{ stored: number }> };
        if (r.rows[0]?.stored !== plan.linked.length) {
          // An id already stored (an event republished under a new message id, stored earlier at
          // its first sequence): nothing of this batch is linked here; the linker sorts it out.
          await db.query('ROLLBACK');
          await db.query('BEGIN');
          this.heads.clear();
          this.cachedAt = -1;
          unlinkedRows = await this.o.storeUnlinked(records, db.query.bind(db));
          unlinkedUpTo = maxSeq(records);
          result = { linked: 0, unlinked: unlinkedRows.length };
        } else {
          const rest = records.filter((r) => !plan.taken.has(r));
          unlinkedRows = rest.length > 0 ? await this.o.storeUnlinked(rest, db.query.bind(db)) : [];
          unlinkedUpTo = maxSeq(rest);
          advanced = plan.advanced;
          cursorAfter = end;
          result = { linked: plan.linked.length, unlinked: unlinkedRows.length };
        }
      } else {
        unlinkedRows = await this.o.storeUnlinked(records, db.query.bind(db));
        unlinkedUpTo = maxSeq(records);
        result = { linked: 0, unlinked: unlinkedRows.length };
      }
      await db.query('COMMIT');
      open = false;
      if (cursorAfter >= 0) {
        for (const h of advanced) this.heads.set(h.tenantId, { position: h.position, hash: h.hash, lastSeq: h.lastSeq });
        if (this.heads.size > MAX_CACHED_HEADS) this.heads.clear();
        this.cachedAt = cursorAfter;
      }
    } catch (err) {
      if (open) await db.query('ROLLBACK').catch(() => undefined);
      this.heads.clear();
      this.cachedAt = -1;
      throw err;
    } finally {
      await qr.release();
    }
    if (cursorAfter >= 0) this.o.linkedUpTo(cursorAfter);
    if (advanced.length > 0) this.o.heads.mark(advanced);
    if (unlinkedRows.length > 0 || unlinkedUpTo > 0) this.o.storedUnlinked(unlinkedUpTo, unlinkedRows);
    return result;
  }

  /**
   * The rows of (cursor, end] linked in stream order, each tenant's head moved, as columns for
   * LINKED_INSERT (none when the run holds no trail event: then only the cursor moves); undefined
   * when a row would fall behind its tenant's head.
   */
  private async plan(db: PgClient, records: readonly AuditRecord[], cursor: number, end: number) {
    // One row per id, at its first sequence within the run; the run's other copies of an id are
    // left out. Those at or below the cursor (redeliveries, already stored) go the plain way,
    // where a known id changes nothing.
    const byId = new Map<string, AuditRecord>();
    const taken = new Set<AuditRecord>();
    for (const r of records) {
      if (r.streamSeq <= cursor || r.streamSeq > end) continue;
      taken.add(r);
      const seen = byId.get(r.event.id);
      if (!seen || r.streamSeq < seen.streamSeq) byId.set(r.event.id, r);
    }
    const linked = [...byId.values()].sort((a, b) => a.streamSeq - b.streamSeq);

    const missing = new Set<string>();
    for (const r of linked) if (!this.heads.has(r.event.tenant_id)) missing.add(r.event.tenant_id);
    if (missing.size > 0) {
      const found = (await db.query('SELECT tenant_id, position, hash, stream_seq FROM audit_heads WHERE tenant_id = ANY($1)', [[...missing]])).rows as Array<{
        tenant_id: string;
        position: string;
        hash: Buffer | null;
        stream_seq: string;
      }>;
      for (const h of found) this.heads.set(h.tenant_id, { position: Number(h.position), hash: h.hash ?? GENESIS, lastSeq: Number(h.stream_seq) });
    }

    const moved = new Map<string, Head & { live: number; test: number; born: boolean }>();
    const cols = rowColumns();
    const positions: number[] = [];
    const hashes: Buffer[] = [];
    for (const r of linked) {
      const e = r.event;
      let h = moved.get(e.tenant_id);
      if (!h) {
        const cached = this.heads.get(e.tenant_id);
        h = { ...(cached ?? { position: 0, hash: GENESIS, lastSeq: 0 }), live: 0, test: 0, born: cached === undefined };
        moved.set(e.tenant_id, h);
      }
      // Behind its tenant's head: only a stream recreated under a kept table does that. The linker
      // refuses such rows (logged); this path leaves the whole batch to it.
      if (r.streamSeq <= h.lastSeq) return undefined;
      const content = pushRow(cols, e, r.streamSeq);
      h.position += 1;
      h.hash = this.o.key.link(h.hash, content, h.position);
      h.lastSeq = r.streamSeq;
      if (e.prefix?.startsWith('kw_test_')) h.test += 1;
      else h.live += 1;
      positions.push(h.position);
      hashes.push(h.hash);
    }
    type HeadColumns = [string[], number[], Buffer[], number[], number[], number[]];
    const known: HeadColumns = [[], [], [], [], [], []];
    const born: HeadColumns = [[], [], [], [], [], []];
    const advanced: MovedHead[] = [];
    for (const [tenantId, h] of moved) {
      const c = h.born ? born : known;
      c[0].push(tenantId);
      c[1].push(h.position);
      c[2].push(h.hash);
      c[3].push(h.lastSeq);
      c[4].push(h.live);
      c[5].push(h.test);
      advanced.push({ tenantId, position: h.position, hash: h.hash, lastSeq: h.lastSeq });
    }
    return { columns: [...cols, positions, hashes], known, born, linked, taken, advanced };
  }
}

const maxSeq = (records: readonly AuditRecord[]): number => records.reduce((m, r) => Math.max(m, r.streamSeq), 0);
