import { eventSubject, type KeyEvent } from '@keyway/contracts';
import type { JetStreamContext } from '@keyway/messaging';
import { counter, startService } from '@keyway/runtime';
import { eventually, type TestInfra } from '@keyway/testing';
import type { NatsConnection } from '@nats-io/transport-node';
import type { INestApplication } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { chainTestBed, lifecycleEvent, publishKeyEvent } from '../../test/audit-fixtures';
import { AppModule } from '../app.module';
import { SERVICE, type AuditLogConfig } from '../config';
import type { AuditRecord, TrailEvent } from '../audit/audit-event';
import { AuditEventsRepository } from '../audit/audit-events.repository';
import { AuditIngestService } from '../audit/audit-ingest.service';
import { ChainKey, GENESIS } from './chain';
import { ChainService } from './chain.service';
import { InsertLinker } from './insert-linker';
import { LINKER_LOCK } from './linker';

type Row = { id: string; tenant_id: string; chain_pos: string | null; stream_seq: string; sealed: boolean };

/**
 * One writing replica, as production runs by default: batches continue the chain, so each is linked in
 * the transaction that stores it. What cannot continue it (a message held back for a retry, an
 * event republished after it was linked) falls back to the linker, and linking as stored resumes.
 */
describe('the audit chain linked as it is stored', () => {
  let infra: TestInfra;
  let app: INestApplication;
  let nc: NatsConnection;
  let jet: JetStreamContext;
  let ds: DataSource;
  let key: ChainKey;
  let config: AuditLogConfig;
  let standby: INestApplication | undefined;

  const rows = (tenant: string) =>
    ds.query<Row[]>('SELECT id, tenant_id, chain_pos, stream_seq, seal IS NOT NULL AS sealed FROM audit_events WHERE tenant_id = $1 ORDER BY stream_seq', [tenant]);
  const linkedCount = async (tenant: string) => (await rows(tenant)).filter((r) => r.chain_pos !== null).length;
  const verify = (tenant: string) => app.get(ChainService).verify(tenant);
  const publishAll = async (events: KeyEvent[]): Promise<Map<string, number>> => {
    const seqs = new Map<string, number>();
    for (const e of events) seqs.set(e.id, (await publishKeyEvent(jet.js, e)).seq);
    return seqs;
  };
  const cursor = async () => Number((await ds.query<Array<{ s: string }>>('SELECT stream_seq AS s FROM audit_linker'))[0]?.s);
  /** keyway_audit_batches_total by `how` (this process: every replica a test starts). */
  const batches = async (how: string): Promise<number> => {
    const m = counter('keyway_audit_batches_total', '', ['how']);
    return (await m.get()).values.find((v) => v.labels.how === how)?.value ?? 0;
  };

  beforeAll(async () => {
    // A newer schema version is retried twice, 100 ms apart, then dead-lettered.
    const bed = await chainTestBed('inslink', {
      AUDIT_WRITER_LEASE: 'on',
      AUDIT_WRITER_LEASE_POLL_MS: '100',
      // Two writers, as production runs: a batch is planned while the one before it is written.
      AUDIT_WRITERS: '2',
      AUDIT_BATCH_MAX: '64',
      AUDIT_LINK_IDLE_MS: '50',
      AUDIT_MAX_DELIVER: '2',
      AUDIT_NAK_DELAY_MS: '100',
      AUDIT_NAK_DELAY_MAX_MS: '100',
    });
    ({ infra, nc, jet } = bed);
    config = bed.config;
    key = new ChainKey(bed.config.AUDIT_CHAIN_KEY!);
    app = await startService({ name: SERVICE, module: AppModule.forRoot(bed.config), config: bed.config });
    ds = app.get(DataSource);
  }, 60_000);
  afterAll(async () => {
    await nc?.close();
    await standby?.close();
    await app?.close();
    await infra?.stop();
  });

  it('links each batch in the transaction that stores it: never sealed for the linker, in stream order, the chain the key computes', async () => {
    const tenants = ['ten_i1', 'ten_i2', 'ten_i3'];
    const events = Array.from({ length: 300 }, (_, i) => lifecycleEvent(i, { tenant: tenants[i % 3]!, mode: i % 4 === 0 ? 'test' : 'live' }));
    const seqs = await publishAll(events);
    for (const t of tenants) await eventually(async () => (await linkedCount(t)) === 100, 30_000, 50);
    // Every batch is planned while the one before it is written (the first on the projection
    // primed as the replica started writing), and nothing moved the cursor meanwhile: every such
    // plan was used, and none was made under the lock.
    expect(await batches('ahead')).toBeGreaterThan(0);
    expect(await batches('refused')).toBe(0);
    expect(await batches('locked')).toBe(0);

    for (const t of tenants) {
      const mine = await rows(t);
      // Linked on insert: a seal is only written for a row that waits for the linker.
      expect(mine.filter((r) => r.sealed)).toEqual([]);
      expect(mine.map((r) => Number(r.chain_pos))).toEqual(mine.map((_, i) => i + 1));
      let prev = GENESIS;
      events
        .filter((e) => e.tenant_id === t)
        .sort((a, b) => seqs.get(a.id)! - seqs.get(b.id)!)
        .forEach((e, i) => (prev = key.link(prev, { ...e, actor_type: e.actor.type, actor_id: e.actor.id, data: e.data }, i + 1)));
      expect((await verify(t)).verification).toEqual({ verified: true, entries: 100, head: prev.toString('hex') });
    }
    expect(await cursor()).toBe(Math.max(...seqs.values()));
  });

  it('does not search the table for unlinked rows while batches are linked as they are stored, and searches again once the cursor halts', async () => {
    const t = 'ten_search';
    const searches: number[] = [];
    const query = ds.query.bind(ds);
    const spy = jest.spyOn(ds, 'query').mockImplementation((sql: string, ...rest: Parameters<DataSource['query']> extends [string, ...infer R] ? R : never) => {
      if (sql.includes('AS waiting')) searches.push(Date.now());
      return query(sql, ...rest);
    });
    try {
      // A second of steady traffic: a batch every 25 ms, so the cursor moves between any two idle rounds (50 ms).
      const startedAt = Date.now();
      for (let i = 0; i < 40; i += 1) {
        await publishAll([lifecycleEvent(1_000 + i, { tenant: t })]);
        await new Promise((r) => setTimeout(r, 25));
      }
      await eventually(async () => (await linkedCount(t)) === 40, 30_000, 20);
      const busy = searches.filter((at) => at >= startedAt).length;
      // Each search reads every row past the cursor, those of the batches still being written among them.
      // Before: one per idle round (about 20 in this second).
      expect(busy).toBeLessThanOrEqual(3);
      // Idle, the linker looks again (a row left unlinked by another replica or a crash is found).
      const idleFrom = searches.length;
      await eventually(async () => searches.length > idleFrom + 1, 5_000, 20);
    } finally {
      spy.mockRestore();
    }
  });

  it('a message held back for a retry: what follows it waits sealed for the linker, and linking as stored resumes once it is settled', async () => {
    const t = 'ten_held';
    const before = Array.from({ length: 10 }, (_, i) => lifecycleEvent(i, { tenant: t }));
    const after = Array.from({ length: 10 }, (_, i) => lifecycleEvent(10 + i, { tenant: t }));
    await publishAll(before);
    // From a newer writer (a rolling deploy): redelivered with a delay, then dead-lettered.
    const held = await jet.js.publish(eventSubject('updated'), JSON.stringify({ ...lifecycleEvent(99, { tenant: t }), schema_version: 99 }));
    const afterSeqs = await publishAll(after);
    await eventually(async () => (await linkedCount(t)) === 20, 30_000, 50);
    expect(await cursor()).toBeGreaterThanOrEqual(held.seq);

    const stored = await rows(t);
    // Nothing after the held message could be linked before it was settled.
    const waited = stored.filter((r) => afterSeqs.has(r.id));
    expect(waited.every((r) => r.sealed)).toBe(true);
    expect(stored.map((r) => Number(r.chain_pos))).toEqual(stored.map((_, i) => i + 1));

    const later = Array.from({ length: 10 }, (_, i) => lifecycleEvent(20 + i, { tenant: t }));
    const laterSeqs = await publishAll(later);
    await eventually(async () => (await linkedCount(t)) === 30, 30_000, 50);
    expect((await rows(t)).filter((r) => laterSeqs.has(r.id) && r.sealed)).toEqual([]);
    expect((await verify(t)).verification).toMatchObject({ verified: true, entries: 30 });
  });

  it('an event republished under a new message id after it was linked: stored once, the chain unchanged, linking as stored resumes', async () => {
    const t = 'ten_again';
    const first = Array.from({ length: 10 }, (_, i) => lifecycleEvent(i, { tenant: t }));
    await publishAll(first);
    await eventually(async () => (await linkedCount(t)) === 10, 30_000, 50);
    const headBefore = (await verify(t)).verification;

    // No message id: past the duplicate window, as a relay republishing late would.
    const again = await jet.js.publish(eventSubject(first[3]!.type), JSON.stringify(first[3]));
    await eventually(async () => (await cursor()) >= again.seq, 30_000, 50);
    expect((await rows(t)).filter((r) => r.id === first[3]!.id)).toHaveLength(1);
    expect((await verify(t)).verification).toEqual(headBefore);

    const next = Array.from({ length: 10 }, (_, i) => lifecycleEvent(10 + i, { tenant: t }));
    const nextSeqs = await publishAll(next);
    await eventually(async () => (await linkedCount(t)) === 20, 30_000, 50);
    expect((await rows(t)).filter((r) => nextSeqs.has(r.id) && r.sealed)).toEqual([]);
    expect((await verify(t)).verification).toMatchObject({ verified: true, entries: 20 });
  });

  it('a second replica stands by (ready, not writing) and takes the writer lease over when the first goes', async () => {
    standby = await startService({ name: SERVICE, module: AppModule.forRoot(config), config });
    const t = 'ten_lease';
    const before = Array.from({ length: 30 }, (_, i) => lifecycleEvent(i, { tenant: t }));
    await publishAll(before);
    await eventually(async () => (await linkedCount(t)) === 30, 30_000, 50);
    // Written by the first alone: every row linked as it was stored.
    expect((await rows(t)).filter((r) => r.sealed)).toEqual([]);
    expect(() => standby!.get(AuditIngestService).assertConsuming()).not.toThrow();
    expect(standby.get(AuditIngestService).writing).toBe(false);
    expect(app.get(AuditIngestService).writing).toBe(true);

    await app.close();
    ds = standby.get(DataSource);
    const after = Array.from({ length: 30 }, (_, i) => lifecycleEvent(30 + i, { tenant: t }));
    await publishAll(after);
    await eventually(async () => (await linkedCount(t)) === 60, 30_000, 50);
    expect(standby.get(AuditIngestService).writing).toBe(true);
    expect((await standby.get(ChainService).verify(t)).verification).toMatchObject({ verified: true, entries: 60 });
    app = standby;
    standby = undefined;
  });
  // The tests from here on drive InsertLinkers outside any consumer (as replicas with no writer
  // lease would), on stream sequences past what the stream holds: they run last.
  const linker = () => {
    const repo = app.get(AuditEventsRepository);
    return new InsertLinker({ ds, key, heads: { mark: () => undefined }, storeUnlinked: (r, q) => repo.insert(r, q), linkedUpTo: () => undefined, storedUnlinked: () => undefined });
  };
  /** `n` entries of tenant `t` at stream sequences from `from` on, and the sequences they settle. */
  const trailOf =
    (t: string) =>
    (from: number, n: number, i0: number): [AuditRecord[], number[]] => {
      const records = Array.from({ length: n }, (_, i) => ({ event: lifecycleEvent(i0 + i, { tenant: t }) as TrailEvent, streamSeq: from + i }));
      return [records, records.map((r) => r.streamSeq)];
    };
  // Messages that add no row (used events, dead letters) settle their sequences all the same.
  const noRows = (from: number, to: number): [AuditRecord[], number[]] => [[], Array.from({ length: to - from + 1 }, (_, i) => from + i)];
  /** Runs `fn` on a connection of its own that holds the linker's lock until `fn` returns (then commits). */
  const holdingLock = async <T>(fn: (q: (sql: string, params?: unknown[]) => Promise<unknown>) => Promise<T>): Promise<T> => {
    const other = ds.createQueryRunner();
    await other.connect();
    try {
      await other.query(`BEGIN; SELECT pg_advisory_xact_lock(${LINKER_LOCK})`);
      const out = await fn((sql, params) => other.query(sql, params));
      await other.query('COMMIT');
      return out;
    } finally {
      await other.release();
    }
  };
  const lockWaiters = async () => Number((await ds.query(`SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`))[0].n);
  /** Transactions that have inserted into audit_events and not yet ended. */
  const openInserts = async () =>
    Number(
      (
        await ds.query(
          `SELECT count(*) AS n FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE c.relname = 'audit_events' AND l.mode = 'RowExclusiveLock' AND l.granted AND a.state <> 'active'`,
        )
      )[0].n,
    );

  it("a turn's head updates stay on their pages (HOT): 1,000 tenants' heads moved at once touch no index", async () => {
    // The backend's own counters (pg_stat_get_xact_*), not pg_stat_user_tables: those are flushed
    // later, these are exact; they also hold what this pooled connection did before and has not
    // flushed yet, hence the difference. Rolled back: no head of these tenants stays.
    const qr = ds.createQueryRunner();
    await qr.connect();
    const counts = async (): Promise<{ upd: number; hot: number }> => {
      const [c] = (await qr.query(
        `SELECT pg_stat_get_xact_tuples_updated('audit_heads'::regclass) AS upd, pg_stat_get_xact_tuples_hot_updated('audit_heads'::regclass) AS hot`,
      )) as Array<{ upd: string; hot: string }>;
      return { upd: Number(c!.upd), hot: Number(c!.hot) };
    };
    try {
      await qr.query('BEGIN');
      await qr.query(`INSERT INTO audit_heads (tenant_id, position, hash, stream_seq) SELECT 'ten_room' || n, n, sha256(n::text::bytea), n FROM generate_series(1, 1000) n`);
      const before = await counts();
      // One turn's worth: every head moved once, as TURN does.
      await qr.query(`UPDATE audit_heads SET position = position + 1, hash = sha256(hash), stream_seq = stream_seq + 1000, live_count = live_count + 1 WHERE tenant_id LIKE 'ten_room%'`);
      const after = await counts();
      expect(after.upd - before.upd).toBe(1000);
      // Packed full (fillfactor 100), none of them stays on its page: each goes to another one and into the index.
      expect(after.hot - before.hot).toBe(1000);
    } finally {
      await qr.query('ROLLBACK');
      await qr.release();
    }
  });

  it('a plan made ahead is refused once the cursor moved past where it was planned from: the cursor never goes back', async () => {
    // Two writers of the same trail outside any consumer (as two replicas with no writer lease
    // would be), on stream sequences past what the stream holds: this test runs last.
    const [one, two] = [linker(), linker()];
    const t = 'ten_refused';
    const trail = trailOf(t);
    const at = await cursor();

    expect(await one.store(...trail(at + 1, 5, 0))).toEqual({ linked: 5, unlinked: 0 });
    // `one` plans its next batch from at + 5; `two` settles at + 6 .. at + 10 first.
    expect(await two.store(...noRows(at + 6, at + 10))).toEqual({ linked: 0, unlinked: 0 });
    expect(await cursor()).toBe(at + 10);

    // The same messages, redelivered to `one` (at + 6 .. at + 8): planned from at + 5, applied they
    // would move the cursor back to at + 8. Refused, and nothing in them continues the cursor.
    const refused = await batches('refused');
    expect(await one.store(...noRows(at + 6, at + 8))).toEqual({ linked: 0, unlinked: 0 });
    expect(await batches('refused')).toBe(refused + 1);
    expect(await cursor()).toBe(at + 10);

    // `one` carries on from the table: its next batches continue the cursor and are linked.
    expect(await one.store(...trail(at + 11, 5, 5))).toEqual({ linked: 5, unlinked: 0 });
    expect(await one.store(...trail(at + 16, 5, 10))).toEqual({ linked: 5, unlinked: 0 });
    expect(await cursor()).toBe(at + 20);
    const mine = await rows(t);
    expect(mine.map((r) => Number(r.chain_pos))).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    expect((await verify(t)).verification).toMatchObject({ verified: true, entries: 15 });

    // The cursor moved while the plan waited for the lock: its turn reads the cursor once locked,
    // and the plan is refused all the same.
    const waiting = await holdingLock(async (q) => {
      await q('UPDATE audit_linker SET stream_seq = $1', [at + 25]);
      const w = one.store(...noRows(at + 21, at + 23));
      await eventually(async () => (await lockWaiters()) === 1, 10_000, 20);
      return { w };
    });
    expect(await waiting.w).toEqual({ linked: 0, unlinked: 0 });
    expect(await batches('refused')).toBe(refused + 2);
    expect(await cursor()).toBe(at + 25);
    expect((await verify(t)).verification).toMatchObject({ verified: true, entries: 15 });
  });

  it('batches insert side by side and take their turns in order; a batch refused takes the later ones back with it', async () => {
    const one = linker();
    const t = 'ten_sidebyside';
    const trail = trailOf(t);
    const at = await cursor();
    expect(await one.store(...trail(at + 1, 5, 0))).toEqual({ linked: 5, unlinked: 0 });

    // With the lock held elsewhere, both next batches insert their rows (two transactions open at
    // once), and the first waits for the lock: the inserts do not wait for each other's turns.
    const [first, second] = await holdingLock(async () => {
      const both = [one.store(...trail(at + 6, 5, 5)), one.store(...trail(at + 11, 5, 10))];
      await eventually(async () => (await lockWaiters()) === 1 && (await openInserts()) === 1, 10_000, 20);
      expect(await linkedCount(t)).toBe(5); // nothing of theirs is visible before it commits
      return both;
    });
    expect(await first).toEqual({ linked: 5, unlinked: 0 });
    expect(await second).toEqual({ linked: 5, unlinked: 0 });
    expect(await cursor()).toBe(at + 15);
    expect((await rows(t)).map((r) => Number(r.chain_pos))).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    expect((await verify(t)).verification).toMatchObject({ verified: true, entries: 15 });

    // The cursor moves past both while they wait (another writer settled those messages): the
    // first is refused, and the second's rows, inserted already, are rolled back with it, linked
    // by neither. Both are stored again from the table, unlinked (at or below the cursor).
    const refused = await batches('refused');
    const [third, fourth] = await holdingLock(async (q) => {
      await q('UPDATE audit_linker SET stream_seq = $1', [at + 30]);
      const both = [one.store(...trail(at + 16, 5, 15)), one.store(...trail(at + 21, 5, 20))];
      await eventually(async () => (await lockWaiters()) === 1 && (await openInserts()) === 1, 10_000, 20);
      return both;
    });
    expect(await third).toEqual({ linked: 0, unlinked: 5 });
    expect(await fourth).toEqual({ linked: 0, unlinked: 5 });
    expect(await batches('refused')).toBe(refused + 2);
    expect(await cursor()).toBe(at + 30);
    const mine = await rows(t);
    expect(mine).toHaveLength(25);
    expect(mine.filter((r) => r.chain_pos !== null).map((r) => Number(r.chain_pos))).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    const head = await ds.query<Array<{ position: string }>>('SELECT position FROM audit_heads WHERE tenant_id = $1', [t]);
    expect(Number(head[0]?.position)).toBe(15);
    expect((await verify(t)).verification).toMatchObject({ verified: true, entries: 15 });
  });

  it('a batch sharing an id with a batch still being written waits for it: no deadlock, the id stored once at its first sequence', async () => {
    const one = linker();
    const t = 'ten_shared';
    const trail = trailOf(t);
    const at = await cursor();
    const [[stored]] = trail(at + 1, 1, 0) as [[AuditRecord], number[]];
    expect(await one.store([stored], [at + 1])).toEqual({ linked: 1, unlinked: 0 });
    const [[again, next]] = trail(0, 2, 1) as [[AuditRecord, AuditRecord], number[]];

    // The first batch redelivers `stored` (below the cursor, so stored the plain way before its
    // links) and brings `again`; the second brings `again` republished, then `next`. While the
    // first waits on a lock held on `stored`'s row, the second could insert `again` before it and
    // then wait here for the first's turn, while the first waits in Postgres on the second.
    const other = ds.createQueryRunner();
    await other.connect();
    let both: Array<Promise<unknown>>;
    try {
      await other.query('BEGIN');
      await other.query('SELECT 1 FROM audit_events WHERE id = $1 FOR UPDATE', [stored.event.id]);
      both = [
        one.store([stored, { event: again.event, streamSeq: at + 2 }], [at + 1, at + 2]),
        one.store([{ event: again.event, streamSeq: at + 3 }, { event: next.event, streamSeq: at + 4 }], [at + 3, at + 4]),
      ];
      await eventually(async () => Number((await ds.query(`SELECT count(*) AS n FROM pg_locks WHERE locktype IN ('transactionid', 'tuple') AND NOT granted`))[0].n) >= 1, 10_000, 20);
      await new Promise((r) => setTimeout(r, 300)); // time for the second to run ahead, were it allowed to
      await other.query('COMMIT');
    } finally {
      await other.release();
    }
    const deadlock = new Promise((_, reject) => setTimeout(() => reject(new Error('the batches wait on each other')), 15_000).unref());
    const [first, second] = (await Promise.race([Promise.all(both), deadlock])) as unknown[];
    expect(first).toEqual({ linked: 1, unlinked: 1 });
    // `again` is stored already: nothing of the second batch is linked here (the linker sorts it out).
    expect(second).toEqual({ linked: 0, unlinked: 2 });
    const mine = await rows(t);
    expect(mine.map((r) => [r.id, Number(r.stream_seq), r.chain_pos === null ? null : Number(r.chain_pos)])).toEqual([
      [stored.event.id, at + 1, 1],
      [again.event.id, at + 2, 2],
      [next.event.id, at + 4, null],
    ]);
    expect((await verify(t)).verification).toMatchObject({ verified: true, entries: 2 });
    // The sequences settled (as the linker would, once past them), for the next test.
    await one.store(...noRows(at + 3, at + 4));
    expect(await cursor()).toBe(at + 4);
  });

  it('a batch inserted ahead that waits on a lock for long (an open transaction of another writer) gives up and is planned again under the lock', async () => {
    const one = linker();
    const t = 'ten_locktimeout';
    const trail = trailOf(t);
    const at = await cursor();
    expect(await one.store(...trail(at + 1, 1, 0))).toEqual({ linked: 1, unlinked: 0 });
    const [[held, after]] = trail(at + 2, 2, 1) as [[AuditRecord, AuditRecord], number[]];
    // Another writer (a replica without the writer lease) holds `held` inserted and uncommitted.
    const other = ds.createQueryRunner();
    await other.connect();
    const refused = await batches('refused');
    let result: Promise<unknown>;
    try {
      await other.query('BEGIN');
      await app.get(AuditEventsRepository).insert([held], (sql, params) => other.query(sql, params));
      result = one.store([held, after], [at + 2, at + 3]);
      // The plan made ahead gives up after its lock timeout (5 s) and is refused; planned again
      // under the lock, it waits without one, until the other writer commits.
      await eventually(async () => (await batches('refused')) === refused + 1, 15_000, 50);
      await other.query('COMMIT');
    } finally {
      await other.release();
    }
    // Stored either way: linked here, or sealed (`held`, committed by the other writer, may be
    // linked by the linker first), and the linker links what is left, in stream order.
    const { linked, unlinked } = (await result) as { linked: number; unlinked: number };
    expect(linked + unlinked).toBe(2);
    await eventually(async () => (await linkedCount(t)) === 3, 10_000, 50);
    expect((await rows(t)).map((r) => r.id)).toEqual([expect.any(String), held.event.id, after.event.id]);
    expect((await verify(t)).verification).toMatchObject({ verified: true, entries: 3 });
  }, 30_000);
});
