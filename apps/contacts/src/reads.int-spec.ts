import { Rpc, type ContactView, type Environment, type Page } from '@keyway/contracts';
import { startRpcService, type RpcServiceHarness } from '@keyway/testing';
import { DataSource } from 'typeorm';
import { AppModule } from './app.module';
import { ContactsEnv, SERVICE } from './config';
import { ContactsService } from './contacts/contacts.service';

const BIG = 100_000;
const BIG_TEST = 20_000;

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Relation Name'?: string;
  'Index Cond'?: string;
  'Actual Rows'?: number;
  Plans?: PlanNode[];
}
const nodes = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(nodes)];

/**
 * Reads at 100,000 rows per tenant (DESIGN "Pagination", issue 12): the queries the service really
 * runs for a list (captured from its DataSource) are EXPLAINed against 100,000 live contacts of
 * one tenant, with 20,000 test contacts beside them; each must be served by an index that leads
 * with the tenant and mode, never a sequential scan, and `total` is an estimate past 1,000 rows.
 * Set CONTACTS_EXPLAIN=1 to print each query's plan and time.
 */
describe('contacts: reads at 100,000 rows', () => {
  let h: RpcServiceHarness<unknown>;
  let ds: DataSource;
  const ctx = (tenant: string, environment: Environment = 'live') => ({ ...h.ctx(tenant), environment });
  const list = (tenant: string, query: Record<string, string>, env: Environment = 'live') => h.ok<Page<ContactView>>(Rpc.contactsList, { ctx: ctx(tenant, env), query });

  beforeAll(async () => {
    h = await startRpcService('contactreads', { name: SERVICE, env: ContactsEnv, module: (config) => AppModule.forRoot(config) });
    ds = h.app.get(DataSource);
    // In statements of 10,000 rows: one long transaction would hold back every outbox relay on
    // this server (they read below the oldest open transaction) for the whole seeding.
    const base = new Date();
    const seed = async (tenant: string, env: Environment, n: number, tag: string) => {
      for (let from = 1; from <= n; from += 10_000) {
        await ds.query(
          `INSERT INTO contacts (id, tenant_id, environment, type, name, email, external_id, account_id, properties, created_at, updated_at)
           SELECT 'ct_${tag}' || lpad(i::text, 8, '0'), $1, $2, (ARRAY['user', 'lead', 'partner'])[1 + i % 3],
                  'Person ' || md5(i::text), 'p' || i || '.' || left(md5(i::text || 'e'), 6) || '@${tag}.example',
                  NULL, NULL, '{}', ts, ts
             FROM generate_series($3::int, $4::int) i, LATERAL (SELECT $5::timestamptz - i * interval '1 second' - (i % 997) * interval '1 microsecond' AS ts) t`,
          [tenant, env, from, Math.min(n, from + 9_999), base],
        );
      }
    };
    await seed('ten_big', 'live', BIG, 'big');
    await seed('ten_big', 'test', BIG_TEST, 'bigtest');
    await seed('ten_small', 'live', 1_000, 'small');
    await ds.query('VACUUM ANALYZE contacts');
  }, 300_000);
  afterAll(() => h?.close());

  const explain = async (sql: string, params: unknown[] | undefined) => {
    const [row] = (await ds.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`, params)) as Array<{ 'QUERY PLAN': Array<{ Plan: PlanNode; 'Execution Time': number }> }>;
    return row!['QUERY PLAN'][0]!;
  };

  /**
   * Runs a list through the service, and EXPLAINs (ANALYZE) every query it sent to Postgres. The
   * page query must not scan the table; the count reads at most 1,001 matching rows whatever the
   * plan (here the planner may well scan: this tenant is most of the table, and the LIMIT stops
   * it early). The page query's plan is returned.
   */
  async function explainList(tenant: string, query: Record<string, string>): Promise<{ page: Page<ContactView>; plan: PlanNode; ms: number }> {
    const spy = jest.spyOn(ds, 'query');
    let page: Page<ContactView>;
    let calls: Array<[string, unknown]>;
    try {
      page = await list(tenant, query);
    } finally {
      calls = spy.mock.calls.map(([sql, params]) => [sql, params]); // mockRestore forgets them
      spy.mockRestore();
    }
    const sent = calls.filter(([sql]) => /FROM contacts/.test(sql) && !/^EXPLAIN/.test(sql));
    let pageQuery: { Plan: PlanNode; 'Execution Time': number } | undefined;
    for (const [sql, params] of sent) {
      const doc = await explain(sql, params as unknown[] | undefined);
      if (/ORDER BY/.test(sql)) {
        expect(nodes(doc.Plan).filter((n) => n['Node Type'] === 'Seq Scan')).toEqual([]);
        pageQuery = doc;
      } else if (/^SELECT count/.test(sql)) {
        const scans = nodes(doc.Plan).filter((n) => /Scan/.test(n['Node Type']) && n['Relation Name'] === 'contacts');
        for (const scan of scans) expect(scan['Actual Rows']).toBeLessThanOrEqual(1_001);
      }
      if (process.env.CONTACTS_EXPLAIN) {
        const shape = nodes(doc.Plan).map((n) => [n['Node Type'], n['Index Name'], n['Index Cond']]);
        process.stdout.write(`\n${JSON.stringify(query)} ${/ORDER BY/.test(sql) ? 'page' : 'count'}: ${doc['Execution Time']} ms ${JSON.stringify(shape)}\n`);
      }
    }
    if (!pageQuery) throw new Error('no page query was sent');
    return { page: page!, plan: pageQuery.Plan, ms: pageQuery['Execution Time'] };
  }

  /** Index scans only, on an index that names the tenant and the mode. */
  function expectIndexed(plan: PlanNode, index: RegExp): void {
    const all = nodes(plan);
    expect(all.filter((n) => n['Node Type'] === 'Seq Scan')).toEqual([]);
    const used = all.filter((n) => n['Index Name'] !== undefined);
    expect(used.map((n) => n['Index Name'])).toContainEqual(expect.stringMatching(index));
  }

  it('first page: the (tenant, mode, created_at, id) index, an estimated total, an exact hasMore', async () => {
    const { page, plan } = await explainList('ten_big', {});
    expectIndexed(plan, /^contacts_list$/);
    expect(page).toMatchObject({ hasMore: true, total_is_estimate: true, next_cursor: expect.any(String) });
    expect(page.total).toBeGreaterThan(BIG * 0.8);
    expect(page.total).toBeLessThan(BIG * 1.2);
    expect(page.data.every((c) => c.id.startsWith('ct_big'))).toBe(true);
    // A small tenant's total is exact, and unflagged.
    const small = await list('ten_small', {});
    expect(small).toMatchObject({ total: 1_000, hasMore: true });
    expect(small.total_is_estimate).toBeUndefined();
    // A small list searched: exact too (the newest rows held all of it), first page and after.
    const searched = await list('ten_small', { q: 'small.example', pageSize: '50' });
    expect(searched).toMatchObject({ total: 1_000, hasMore: true });
    expect(searched.total_is_estimate).toBeUndefined();
    const next = await list('ten_small', { q: 'small.example', pageSize: '50', after: searched.next_cursor! });
    expect(next).toMatchObject({ total: 1_000, hasMore: true });
    expect(next.total_is_estimate).toBeUndefined();
    // The test rows beside the live ones: their own list, exact below the threshold? No: 20,000, estimated.
    expect((await list('ten_big', {}, 'test')).data.every((c) => c.id.startsWith('ct_bigtest'))).toBe(true);
  });

  it('a deep page by `after` (from the middle, and at the very end) is the same index range scan', async () => {
    const service = h.app.get(ContactsService);
    const cursorAt = async (offset: number) => {
      const [row] = (await ds.query(
        `SELECT created_at::text AS "_kc0", id AS "_kc1" FROM contacts r WHERE tenant_id = 'ten_big' AND environment = 'live' ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT 1`,
        [offset],
      )) as Array<Record<string, unknown>>;
      return service.records.keyset.encode(row!, { q: undefined, type: undefined, account_id: undefined });
    };
    const middle = await explainList('ten_big', { after: await cursorAt(BIG / 2 - 1), pageSize: '50' });
    expectIndexed(middle.plan, /^contacts_list$/);
    expect(middle.page.data).toHaveLength(50);
    expect(middle.page.data[0]!.id).toBe(`ct_big${String(BIG / 2 + 1).padStart(8, '0')}`);
    expect(middle.page.hasMore).toBe(true);

    const end = await explainList('ten_big', { after: await cursorAt(BIG - 11), pageSize: '10' });
    expect(end.page.data.map((c) => c.id)).toEqual(Array.from({ length: 10 }, (_, i) => `ct_big${String(BIG - 9 + i).padStart(8, '0')}`));
    expect(end.page).toMatchObject({ hasMore: false, next_cursor: null });
  });

  it('page 20 and the deepest page allowed by OFFSET use the index too; past 10,000 rows it is a 400 naming after', async () => {
    expectIndexed((await explainList('ten_big', { page: '20' })).plan, /^contacts_list$/);
    expectIndexed((await explainList('ten_big', { page: '200', pageSize: '50' })).plan, /^contacts_list$/);
    const r = await h.call(Rpc.contactsList, { ctx: ctx('ten_big'), query: { page: '201', pageSize: '50' } });
    expect(r.err).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ field: 'after' })] });
  });

  it('`type` is served by the (tenant, mode, type, created_at, id) index', async () => {
    const { page, plan } = await explainList('ten_big', { type: 'partner' });
    expectIndexed(plan, /^contacts_by_type$/);
    expect(page.data.every((c) => c.type === 'partner')).toBe(true);
  });

  it('`q` is served by the per-mode trigram index, and finds the one match among 100,000', async () => {
    const [row] = (await ds.query(`SELECT name, email FROM contacts WHERE id = 'ct_big00004242'`)) as Array<{ name: string; email: string }>;
    const byName = await explainList('ten_big', { q: row!.name.slice(7, 19).toUpperCase() });
    expectIndexed(byName.plan, /^contacts_search_live$/);
    expect(byName.page.data.map((c) => c.id)).toEqual(['ct_big00004242']);
    expect(byName.page).toMatchObject({ total: 1, hasMore: false });
    const byEmail = await explainList('ten_big', { q: row!.email.slice(0, 12) });
    expectIndexed(byEmail.plan, /^contacts_search_live$/);
    expect(byEmail.page.data.map((c) => c.id)).toEqual(['ct_big00004242']);
    // A term every row matches: the trigram index would collect and sort all 100,000 matches;
    // the newest rows of the list index hold a full page of them, so the page comes from there.
    const common = await explainList('ten_big', { q: 'big.example' });
    expectIndexed(common.plan, /^contacts_list$/);
    expect(common.ms).toBeLessThan(50);
    expect(common.page).toMatchObject({ hasMore: true, total_is_estimate: true });
    expect(common.page.total).toBeGreaterThan(BIG * 0.8);
    expect(common.page.total).toBeLessThan(BIG * 1.2);
  });

  it('`q` answers what a plain scan would, for common, middling and rare terms, first page and after', async () => {
    const expected = async (term: string, limit: number, offset = 0) =>
      ((await ds.query(
        `SELECT id FROM contacts WHERE tenant_id = 'ten_big' AND environment = 'live' AND (name ILIKE $1 OR email ILIKE $1) ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3`,
        [`%${term}%`, limit, offset],
      )) as Array<{ id: string }>).map((r) => r.id);
    // md5 prefixes: about 1/16 of the rows (6,250: the newest rows hold a page), 1/4,096 (~24: they do not).
    for (const term of ['person 0', 'person 00a', 'big.example']) {
      const first = await list('ten_big', { q: term, pageSize: '20' });
      expect(first.data.map((c) => c.id)).toEqual(await expected(term, 20));
      if (!first.next_cursor) continue;
      const second = await list('ten_big', { q: term, pageSize: '20', after: first.next_cursor });
      expect(second.data.map((c) => c.id)).toEqual(await expected(term, 20, 20));
    }
  });

  it('walking with `after` while rows are inserted: no row skipped or repeated (page numbers repeat some)', async () => {
    const T = 'ten_walk';
    for (let i = 0; i < 120; i++) await h.ok(Rpc.contactsCreate, { ctx: ctx(T), body: { type: 'lead', name: `W${i}`, email: `w${i}@walk.test` } });
    const before = (await ds.query(`SELECT id FROM contacts WHERE tenant_id = $1`, [T])) as Array<{ id: string }>;
    let inserted = 0;
    const insertOne = () => h.ok(Rpc.contactsCreate, { ctx: ctx(T), body: { type: 'lead', name: `New${inserted}`, email: `new${inserted++}@walk.test` } });

    const byCursor: string[] = [];
    let after: string | null | undefined;
    do {
      const page = await list(T, { pageSize: '7', ...(after ? { after } : {}) });
      byCursor.push(...page.data.map((c) => c.id));
      after = page.next_cursor;
      await Promise.all([insertOne(), insertOne()]);
    } while (after);
    expect(new Set(byCursor).size).toBe(byCursor.length);
    for (const { id } of before) expect(byCursor).toContain(id);

    // The same walk by page numbers repeats rows: the reason `after` exists.
    const byPage: string[] = [];
    for (let p = 1; ; p++) {
      const page = await list(T, { pageSize: '7', page: String(p) });
      byPage.push(...page.data.map((c) => c.id));
      if (!page.hasMore || p > 60) break;
      await Promise.all([insertOne(), insertOne()]);
    }
    expect(new Set(byPage).size).toBeLessThan(byPage.length);
  });
});
