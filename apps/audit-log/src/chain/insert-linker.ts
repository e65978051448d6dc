import { counter } from '@keyway/runtime';
import type { DataSource } from 'typeorm';
import { pushRow, rowColumns, type AuditRecord } from '../audit/audit-event';
import { GENESIS, type ChainKey } from './chain';
import type { HeadPublisher, LinkedHead } from './heads';
import { LINKER_LOCK, type PgClient, type SealedRow } from './linker';

/**
 * How each batch was stored: linked by a plan made while the batch before it was written
 * (`ahead`), by one made under the linker's lock (`locked`: the first batch, a batch after one that
 * did not continue, or a plan `refused` because the cursor moved or its projection was dropped),
 * or stored unlinked for the floor-paced linker (`unlinked`).
 */
const batches = () => counter('keyway_audit_batches_total', 'Audit batches by how they were stored (ahead, locked, unlinked), and plans made ahead and refused (refused)', ['how']);

/** Tenants' heads kept between batches (beyond this, forgotten and read again). */
const MAX_CACHED_HEADS = 100_000;
/** Heads read before the first batch: those of the tenants that moved last. */
const PRIMED_HEADS = 10_000;

interface Head {
  position: number;
  hash: Buffer;
  lastSeq: number;
}

/**
 * A tenant's head as a batch moves it. A class, not a spread of the cached head plus counters: with
 * a head per tenant per batch (1,000 tenants: most of a batch's rows), objects built by spreading
 * took V8's slow path and cost as much as the rows' HMACs.
 */
class Moving {
  position: number;
  hash: Buffer;
  lastSeq: number;
  live = 0;
  test = 0;
  /** No head row yet: the batch creates it. */
  readonly born: boolean;

  constructor(cached: Head | undefined) {
    this.position = cached?.position ?? 0;
    this.hash = cached?.hash ?? GENESIS;
    this.lastSeq = cached?.lastSeq ?? 0;
    this.born = cached === undefined;
  }
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

/**
 * A batch's linked rows, inserted in its transaction before its turn comes: batches of a replica
 * insert in parallel (on a 2-core box, the insert is most of a batch's time in Postgres), and only
 * their turns (TURN) go one after another. An id already stored, or being stored by a batch still
 * open, fails the insert (unique_violation) or waits for that batch to end.
 */
const LINKED_ROWS = `
  INSERT INTO audit_events
    (id, tenant_id, key_id, type, schema_version, occurred_at, prefix, actor_type, actor_id, data, stream_seq, chain_pos, hash, linked_at)
  SELECT u.id, u.tenant_id, u.key_id, u.type, u.schema_version, u.occurred_at, u.prefix, u.actor_type, u.actor_id, u.data,
    u.stream_seq, u.chain_pos, substring($13::bytea FROM (u.n::int - 1) * 32 + 1 FOR 32), clock_timestamp()
  FROM unnest(
    $1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::timestamptz[],
    $7::text[], $8::text[], $9::text[], $10::jsonb[], $11::bigint[], $12::bigint[]) WITH ORDINALITY
    AS u(id, tenant_id, key_id, type, schema_version, occurred_at, prefix, actor_type, actor_id, data, stream_seq, chain_pos, n)`;

/**
 * A batch's turn, under the linker's advisory lock (taken by a statement of its own before it, so
 * that this one's snapshot sees what the lock's last holder committed: a statement's snapshot is
 * taken before anything in it waits): its tenants' heads and the cursor, provided the cursor is
 * still where the batch was planned from ($13; moved to $14). A linker round, another replica's
 * batch or a batch of this one that was refused leaves this one unapplied (`moved` 0), and its
 * transaction, rows included, is rolled back. The lock is held until the batch commits, so the
 * next batch's turn, sent as soon as this one returns, waits in Postgres for that commit.
 */
const TURN = `
  WITH turn AS (
    UPDATE audit_linker SET stream_seq = $14 WHERE stream_seq = $13
    RETURNING 1),
  moved AS (
    UPDATE audit_heads h SET position = u.pos, hash = u.hash, stream_seq = u.seq,
      live_count = h.live_count + u.live, test_count = h.test_count + u.test
    FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::bigint[], $5::bigint[], $6::bigint[]) AS u(tenant_id, pos, hash, seq, live, test)
    WHERE h.tenant_id = u.tenant_id AND EXISTS (SELECT 1 FROM turn)),
  born AS (
    INSERT INTO audit_heads AS h (tenant_id, position, hash, stream_seq, live_count, test_count)
    SELECT * FROM unnest($7::text[], $8::bigint[], $9::bytea[], $10::bigint[], $11::bigint[], $12::bigint[])
    WHERE EXISTS (SELECT 1 FROM turn)
    ON CONFLICT (tenant_id) DO UPDATE SET position = EXCLUDED.position, hash = EXCLUDED.hash, stream_seq = EXCLUDED.stream_seq,
      live_count = h.live_count + EXCLUDED.live_count, test_count = h.test_count + EXCLUDED.test_count)
  SELECT count(*)::int AS moved FROM turn`;

/** Postgres's unique_violation: an id of the batch is stored already. */
const isAlreadyStored = (err: unknown): boolean => (err as { code?: unknown } | undefined)?.code === '23505';
/** Postgres's lock_not_available: a wait of a batch's transaction outlasted AHEAD_LOCK_TIMEOUT. */
const isLockTimeout = (err: unknown): boolean => (err as { code?: unknown } | undefined)?.code === '55P03';

/**
 * How long a batch inserted ahead waits for a lock before it gives up and is planned again under
 * the lock. Its waits are normally a commit's length; this bounds what this process cannot see:
 * replicas writing at once without the writer lease, whose open batches inserting the same ids in
 * crossing orders would otherwise wait on each other for good.
 */
const AHEAD_LOCK_TIMEOUT = '5s';

/** The linked insert of a batch, planned against a cursor. */
interface Plan {
  /** The cursor it continues, and where it leaves it. */
  from: number;
  end: number;
  /** The projection it was planned in (see InsertLinker.epoch). */
  epoch: number;
  columns: unknown[];
  known: unknown[][];
  born: unknown[][];
  linked: readonly AuditRecord[];
  /** The records it links or leaves out as copies (the others, at or below `from`, are stored plainly); undefined: all. */
  taken: Set<AuditRecord> | undefined;
  advanced: MovedHead[];
}

/** What a batch stored: linked by its plan (if any), and unlinked (up to a stream sequence). */
interface Stored {
  plan: Plan | undefined;
  unlinked: SealedRow[];
  unlinkedUpTo: number;
}

const SELECT_HEADS = 'SELECT tenant_id, position, hash, stream_seq FROM audit_heads WHERE tenant_id = ANY($1)';
type HeadRow = { tenant_id: string; position: string; hash: Buffer | null; stream_seq: string };

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
 * Batches of this replica are handed in in the order the consumer handed them out, so they
 * continue each other. A batch's links are computed (the HMACs) while the batch before it is still
 * being written: against the *projection*, the heads and cursor as they will be once every batch
 * planned before it commits. Its rows are then inserted at once, in a transaction of its own,
 * while the batch before it may still be inserting (the insert is most of a batch's time in
 * Postgres: done one batch after another, it was the chain's bottleneck). Only the batches' turns,
 * under the lock, go one after another: the heads and the cursor, moved if the cursor is where
 * the plan started and nothing went otherwise since (`epoch`), and the commit. A plan refused
 * there is rolled back, rows included, and planned again under the lock, from the table. A batch
 * planned against nothing (none was known, or it did not continue) holds the next batch's plan
 * back until it is stored.
 */
export class InsertLinker {
  /** Settles when every batch handed in so far is done (stored or failed). */
  private done: Promise<unknown> = Promise.resolve();
  /** Settles when the last batch handed in has had its turn (see store). */
  private turnTaken: Promise<unknown> = Promise.resolve();
  /** Settles when the next batch may be planned. */
  private planTurn: Promise<unknown> = Promise.resolve();
  /** The ids of each batch handed in and not yet done. */
  private readonly open = new Set<ReadonlySet<string>>();
  /** The projection: each tenant's head once the batches planned so far commit (a cache of the table's beyond them). */
  private readonly heads = new Map<string, Head>();
  /** The cursor the projection is at (-1: none; plan from the table). */
  private projectedAt = -1;
  /** Moves whenever the projection is dropped: plans made in an earlier one are planned again. */
  private epoch = 0;

  constructor(private readonly o: InsertLinkerOptions) {}

  /**
   * Stores a batch: `records` (the lifecycle events in it) and `settled`, the stream sequence of
   * every message of the batch (trail events or not: each is settled once this batch commits).
   *
   * Batches are handed in in stream order. Each is planned on the one before it, then inserts its
   * rows in a transaction of its own at once, alongside the batches before it; its turn (cursor
   * and heads) comes once the one before it has taken its own (holding the lock until it commits).
   * A batch sharing an id with a batch not yet done waits for every batch before it first: two
   * open transactions inserting one id would wait on each other in Postgres while the earlier one
   * waits here for the later one's turn, a deadlock that Postgres cannot see.
   */
  store(records: readonly AuditRecord[], settled: readonly number[]): Promise<StoredBatch> {
    const ids = new Set<string>();
    for (const r of records) ids.add(r.event.id);
    const mine = [...ids];
    const shared = [...this.open].some((other) => mine.some((id) => other.has(id)));
    this.open.add(ids);
    const distinct = ids.size === records.length;
    const prepared = this.planTurn.then(() => this.prepare(records, distinct, settled)).catch(() => undefined);
    const before = this.done;
    const previousTurn = this.turnTaken;
    let pass!: () => void;
    this.turnTaken = new Promise<void>((resolve) => (pass = resolve));
    const stored = (async () => {
      const plan = await prepared;
      if (shared) await before;
      return this.storeNow(records, distinct, settled, plan, previousTurn, pass);
    })();
    const finished = stored
      .catch(() => undefined)
      .finally(() => {
        pass(); // also when the batch failed before its turn
        this.open.delete(ids);
      });
    this.done = Promise.all([before, finished]);
    // The next batch plans on this one's plan; without one, on what this one stored.
    this.planTurn = prepared.then((p) => (p ? undefined : finished));
    return stored;
  }

  /**
   * Starts the projection at the table's cursor before the first batch, with the heads of the
   * tenants that moved last (in the same snapshot), so the first batches are planned ahead too,
   * rather than under the lock with the next one's plan held back behind it, and without a read of
   * their heads each; and opens a connection for each writer. With a backlog at start, that was
   * half a second of a replica's first batches. Stale by the time a batch uses it (another replica
   * wrote meanwhile), the plan is refused and made under the lock, as any other.
   */
  async prime(writers: number): Promise<void> {
    const [rows] = (await Promise.all([
      this.o.ds.query(`
        SELECT l.stream_seq AS cursor, h.tenant_id, h.position, h.hash, h.stream_seq
        FROM audit_linker l LEFT JOIN LATERAL (SELECT * FROM audit_heads ORDER BY stream_seq DESC LIMIT ${PRIMED_HEADS}) h ON true`),
      ...Array.from({ length: writers }, () => this.o.ds.query('SELECT 1')),
    ])) as [Array<Omit<HeadRow, 'tenant_id'> & { tenant_id: string | null; cursor: string }>];
    if (this.projectedAt >= 0 || this.open.size > 0 || rows.length === 0) return;
    this.forget();
    for (const h of rows) if (h.tenant_id !== null) this.heads.set(h.tenant_id, { position: Number(h.position), hash: h.hash ?? GENESIS, lastSeq: Number(h.stream_seq) });
    this.projectedAt = Number(rows[0]!.cursor);
  }

  /** The batch's plan against the projection, while earlier batches are still being written. */
  private prepare(records: readonly AuditRecord[], distinct: boolean, settled: readonly number[]): Promise<Plan | undefined> | undefined {
    const from = this.projectedAt;
    if (from < 0 || this.heads.size > MAX_CACHED_HEADS) return undefined;
    const end = continues(settled, from);
    return end > from ? this.plan(records, distinct, from, end, async (ids) => (await this.o.ds.query(SELECT_HEADS, [ids])) as HeadRow[]) : undefined;
  }

  /** Drops the projection: plans made on it are made again, from the table. */
  private forget(): void {
    this.heads.clear();
    this.projectedAt = -1;
    this.epoch += 1;
  }

  /**
   * `previousTurn`: settles once the batch before this one took its turn (or is done); `pass`:
   * lets the next batch take its turn.
   */
  private async storeNow(
    records: readonly AuditRecord[],
    distinct: boolean,
    settled: readonly number[],
    prepared: Plan | undefined,
    previousTurn: Promise<unknown>,
    pass: () => void,
  ): Promise<StoredBatch> {
    const qr = this.o.ds.createQueryRunner();
    const db = (await qr.connect()) as PgClient;
    const query = db.query.bind(db);
    let stored: Stored | undefined;
    try {
      // Planned on a projection still standing: its own transaction, committed if the cursor is
      // where it was planned from. What the plan leaves out (redeliveries at or below the cursor)
      // is stored first, so nothing of the batch can fail once its links commit.
      if (prepared && prepared.epoch === this.epoch) {
        const withRest = await this.storeRest(query, records, prepared);
        if (await this.applyAhead(query, prepared, previousTurn, pass)) {
          stored = withRest;
          batches().inc({ how: 'ahead' });
        }
      }
      if (!stored) {
        await previousTurn;
        if (prepared) {
          this.forget();
          batches().inc({ how: 'refused' });
        }
        stored = await this.storeLocked(query, records, distinct, settled);
        batches().inc({ how: stored.plan ? 'locked' : 'unlinked' });
      }
    } catch (err) {
      this.forget();
      throw err;
    } finally {
      pass();
      await qr.release();
    }
    const { plan, unlinked, unlinkedUpTo } = stored;
    if (plan) {
      this.o.linkedUpTo(plan.end);
      if (plan.advanced.length > 0) this.o.heads.mark(plan.advanced);
    }
    if (unlinked.length > 0 || unlinkedUpTo > 0) this.o.storedUnlinked(unlinkedUpTo, unlinked);
    return { linked: plan?.linked.length ?? 0, unlinked: unlinked.length };
  }

  /**
   * A plan made ahead, in a transaction of its own: its rows inserted at once, its turn once the
   * batch before it took its own. False (all rolled back) when the cursor moved since it was
   * planned, the projection was dropped meanwhile, or an id of it is stored already.
   */
  private async applyAhead(query: PgClient['query'], plan: Plan, previousTurn: Promise<unknown>, pass: () => void): Promise<boolean> {
    await query(`BEGIN; SET LOCAL lock_timeout = '${AHEAD_LOCK_TIMEOUT}'`);
    let open = true;
    try {
      if (!(await this.insertRows(query, plan))) return false;
      await previousTurn;
      if (plan.epoch !== this.epoch) return false;
      await query(`SELECT pg_advisory_xact_lock(${LINKER_LOCK})`);
      if (!(await this.takeTurn(query, plan))) return false;
      // Holding the lock and the cursor row: the next batch's turn waits in Postgres for this commit.
      pass();
      await query('COMMIT');
      open = false;
      return true;
    } catch (err) {
      if (isLockTimeout(err)) return false;
      throw err;
    } finally {
      if (open) await query('ROLLBACK').catch(() => undefined);
    }
  }

  /** Inserts a plan's linked rows (in the caller's transaction): false when an id of it is stored already. */
  private async insertRows(query: PgClient['query'], plan: Plan): Promise<boolean> {
    if (plan.linked.length === 0) return true;
    try {
      await query(LINKED_ROWS, plan.columns);
      return true;
    } catch (err) {
      if (isAlreadyStored(err)) return false;
      throw err;
    }
  }

  /** Moves the cursor and the plan's heads (in the caller's transaction, holding the lock): false when the cursor moved since it was planned. */
  private async takeTurn(query: PgClient['query'], plan: Plan): Promise<boolean> {
    const r = (await query(TURN, [...plan.known, ...plan.born, plan.from, plan.end])) as { rows: Array<{ moved: number }> };
    return r.rows[0]?.moved === 1;
  }

  /** Stores, unlinked, the batch's records its plan leaves out (at or below the cursor it starts from). */
  private async storeRest(query: PgClient['query'], records: readonly AuditRecord[], plan: Plan): Promise<Stored> {
    const taken = plan.taken;
    const rest = taken ? records.filter((r) => !taken.has(r)) : [];
    return { plan, unlinked: rest.length > 0 ? await this.o.storeUnlinked(rest, query) : [], unlinkedUpTo: maxSeq(rest) };
  }

  /**
   * Under the linker's lock: the cursor read, the batch planned from the table (the projection is
   * used only as its cache: at the cursor, with no later batch planned on it), written; what does
   * not continue the cursor, or a batch holding an id stored already, is stored unlinked.
   */
  private async storeLocked(
    query: PgClient['query'],
    records: readonly AuditRecord[],
    distinct: boolean,
    settled: readonly number[],
  ): Promise<Stored> {
    let open = true;
    try {
      // Waits for a linker round or another replica's batch to commit (each a few milliseconds).
      // The cursor in a statement of its own, after the lock: its snapshot sees what the previous
      // holder committed.
      const begun = (await query(`BEGIN; SELECT pg_advisory_xact_lock(${LINKER_LOCK}); SELECT stream_seq AS cursor FROM audit_linker`)) as unknown as Array<{
        rows: Array<{ cursor: string | null }>;
      }>;
      const cursor = Number(begun[2]?.rows[0]?.cursor ?? 0);
      // No later batch planned on this one (it had no plan), so the projection is the table's state
      // if it is at the cursor.
      if (cursor !== this.projectedAt || this.heads.size > MAX_CACHED_HEADS) {
        this.forget();
        this.projectedAt = cursor;
      }
      const end = continues(settled, cursor);
      const plan = end > cursor ? await this.plan(records, distinct, cursor, end, async (ids) => (await query(SELECT_HEADS, [ids])).rows as HeadRow[]) : undefined;
      let result: Stored;
      // Under the lock and at the cursor: the turn cannot be refused.
      if (plan && (await this.insertRows(query, plan)) && (await this.takeTurn(query, plan))) {
        result = await this.storeRest(query, records, plan);
      } else {
        if (plan) {
          // An id already stored (an event republished under a new message id, stored earlier at
          // its first sequence): nothing of this batch is linked here; the linker sorts it out.
          await query('ROLLBACK');
          await query('BEGIN');
          this.forget();
        }
        result = { plan: undefined, unlinked: await this.o.storeUnlinked(records, query), unlinkedUpTo: maxSeq(records) };
      }
      await query('COMMIT');
      open = false;
      return result;
    } finally {
      if (open) await query('ROLLBACK').catch(() => undefined);
    }
  }

  /**
   * The rows of (from, end] linked in stream order, each tenant's head moved, as columns for
   * LINKED_ROWS and TURN (none when the run holds no trail event: then only the cursor moves), on the
   * projection at `from` (heads it lacks read with `readHeads`), which it then moves to `end`.
   * Undefined when a row would fall behind its tenant's head, or when the projection was dropped
   * meanwhile.
   */
  private async plan(
    records: readonly AuditRecord[],
    distinct: boolean,
    from: number,
    end: number,
    readHeads: (ids: string[]) => Promise<HeadRow[]>,
  ): Promise<Plan | undefined> {
    const epoch = this.epoch;
    // One row per id, at its first sequence within the run; the run's other copies of an id are
    // left out. Those at or below the cursor (redeliveries, already stored) go the plain way,
    // where a known id changes nothing.
    // The usual batch (ids distinct, every record in the run, in stream order) is linked as it is.
    let linked: readonly AuditRecord[] = records;
    let taken: Set<AuditRecord> | undefined;
    if (!distinct || !records.every((r, i) => r.streamSeq > from && r.streamSeq <= end && (i === 0 || r.streamSeq > records[i - 1]!.streamSeq))) {
      const byId = new Map<string, AuditRecord>();
      taken = new Set<AuditRecord>();
      for (const r of records) {
        if (r.streamSeq <= from || r.streamSeq > end) continue;
        taken.add(r);
        const seen = byId.get(r.event.id);
        if (!seen || r.streamSeq < seen.streamSeq) byId.set(r.event.id, r);
      }
      linked = [...byId.values()].sort((a, b) => a.streamSeq - b.streamSeq);
    }

    const missing = new Set<string>();
    for (const r of linked) if (!this.heads.has(r.event.tenant_id)) missing.add(r.event.tenant_id);
    if (missing.size > 0) {
      const found = await readHeads([...missing]);
      if (epoch !== this.epoch || from !== this.projectedAt) return undefined;
      for (const h of found) this.heads.set(h.tenant_id, { position: Number(h.position), hash: h.hash ?? GENESIS, lastSeq: Number(h.stream_seq) });
    }

    const moved = new Map<string, Moving>();
    const cols = rowColumns();
    const positions: number[] = [];
    // The links as one binary parameter (32 bytes each, in row order): as an array of bytea, each
    // was written out in hex and escaped.
    const hashes = Buffer.allocUnsafe(32 * linked.length);
    for (const r of linked) {
      const e = r.event;
      let h = moved.get(e.tenant_id);
      if (!h) {
        h = new Moving(this.heads.get(e.tenant_id));
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
      h.hash.copy(hashes, 32 * positions.length);
      positions.push(h.position);
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
      this.heads.set(tenantId, { position: h.position, hash: h.hash, lastSeq: h.lastSeq });
    }
    this.projectedAt = end;
    return { from, end, epoch, columns: [...cols, positions, hashes], known, born, linked, taken, advanced };
  }
}

/** How far `settled` continues `cursor` without a gap. */
function continues(settled: readonly number[], cursor: number): number {
  const seqs = new Set(settled);
  let end = cursor;
  while (seqs.has(end + 1)) end += 1;
  return end;
}

const maxSeq = (records: readonly AuditRecord[]): number => records.reduce((m, r) => Math.max(m, r.streamSeq), 0);
