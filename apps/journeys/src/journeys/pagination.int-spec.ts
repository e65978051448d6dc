import { JourneyView, pageOf, Rpc, TouchpointView, type Page } from '@keyway/contracts';
import { startRpcService, type RpcServiceHarness } from '@keyway/testing';
import { DataSource } from 'typeorm';
import { AppModule } from '../app.module';
import { JourneysEnv, SERVICE } from '../config';

const Journeys = pageOf(JourneyView);
const Touchpoints = pageOf(TouchpointView);

/**
 * DESIGN "Pagination": `page` for the first 10,000 rows, `after` (a cursor) for walking a whole
 * list; `hasMore` exact, `next_cursor` in every envelope, `total` an estimate (flagged) on large
 * lists. A walk by cursor neither skips nor repeats a row while others are being written.
 */
describe('journeys: pagination', () => {
  let h: RpcServiceHarness<unknown>;
  let ds: DataSource;
  const ctx = (tenant: string) => h.ctx(tenant);
  const list = async (tenant: string, query: Record<string, string>): Promise<Page<JourneyView>> => Journeys.parse(await h.ok(Rpc.journeysList, { ctx: ctx(tenant), query }));
  const touchpoints = async (tenant: string, id: string, query: Record<string, string>): Promise<Page<TouchpointView>> =>
    Touchpoints.parse(await h.ok(Rpc.journeysListTouchpoints, { ctx: ctx(tenant), params: { id }, query }));
  const create = async (tenant: string, body: Record<string, unknown>) => JourneyView.parse(await h.ok(Rpc.journeysCreate, { ctx: ctx(tenant), body }));

  /** `n` journeys of a tenant straight into the table, created one millisecond apart (some at the same instant). */
  async function seed(tenant: string, n: number, sameInstant = false): Promise<void> {
    await ds.query(
      `INSERT INTO journeys (id, tenant_id, environment, anonymous_id, created_at)
       SELECT 'jr_seed_' || $1 || '_' || lpad(g::text, 6, '0'), $1, 'live', 'a' || g,
              timestamptz '2024-01-01' + (CASE WHEN $3 THEN 0 ELSE g END) * interval '1 millisecond'
         FROM generate_series(1, $2::int) g`,
      [tenant, n, sameInstant],
    );
    await ds.query('ANALYZE journeys');
  }

  async function walk(fetch: (after: string | undefined) => Promise<Page<{ id: string }>>): Promise<string[]> {
    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const p = await fetch(after);
      expect(p.hasMore).toBe(p.next_cursor !== null);
      seen.push(...p.data.map((x) => x.id));
      if (p.next_cursor === null) return seen;
      after = p.next_cursor;
    }
  }

  beforeAll(async () => {
    h = await startRpcService('jpages', { name: SERVICE, env: JourneysEnv, module: (config) => AppModule.forRoot(config) });
    ds = h.app.get(DataSource);
  });
  afterAll(() => h?.close());

  it('walks a list by cursor without skipping or repeating a row while journeys are created concurrently', async () => {
    const T = 'ten_walk';
    await seed(T, 95, false);
    // 20 at the very same instant (a page boundary falls among them): the id orders them.
    await ds.query(`UPDATE journeys SET created_at = timestamptz '2024-01-01' + interval '50 milliseconds' WHERE tenant_id = $1 AND anonymous_id ~ '^a[45][0-9]$'`, [T]);
    const existing = ((await ds.query(`SELECT id FROM journeys WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC`, [T])) as Array<{ id: string }>).map((r) => r.id);

    let writing = true;
    const writer = (async () => {
      let i = 0;
      while (writing) await create(T, { anonymous_id: `during-${i++}` });
      return i;
    })();
    const seen = await walk((after) => list(T, { pageSize: '7', ...(after ? { after } : {}) }));
    writing = false;
    const written = await writer;
    expect(written).toBeGreaterThan(0);
    // Every journey that existed when the walk began, once, in order; new ones come first (newest first) and are not required.
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.filter((id) => existing.includes(id))).toEqual(existing);
  });

  it('answers hasMore and next_cursor exactly at the end, and counts small lists exactly', async () => {
    const T = 'ten_exact';
    await seed(T, 20);
    const p1 = await list(T, { pageSize: '10' });
    expect(p1).toMatchObject({ total: 20, hasMore: true });
    expect(p1.total_is_estimate).toBeUndefined();
    const p2 = await list(T, { pageSize: '10', after: p1.next_cursor! });
    expect(p2).toMatchObject({ total: 20, hasMore: false, next_cursor: null });
    expect(p2.data).toHaveLength(10);
    // By page: the same rows, and next_cursor continues from there.
    const byPage = await list(T, { pageSize: '10', page: '2' });
    expect(byPage.data.map((j) => j.id)).toEqual(p2.data.map((j) => j.id));
    expect(byPage).toMatchObject({ hasMore: false, next_cursor: null });
    const p1b = await list(T, { pageSize: '5', page: '2' });
    expect((await list(T, { pageSize: '5', after: p1b.next_cursor! })).data.map((j) => j.id)).toEqual(p2.data.slice(0, 5).map((j) => j.id));
  });

  it('does not count a large tenant on every page: the total is an estimate, flagged, and hasMore stays exact', async () => {
    const T = 'ten_large';
    await seed(T, 3_000);
    const first = await list(T, { pageSize: '50' });
    expect(first).toMatchObject({ hasMore: true, total_is_estimate: true });
    expect(first.total).toBeGreaterThan(1_000);
    // Deep by page, within the window; beyond it the answer points to after.
    const deep = await list(T, { pageSize: '50', page: '60' });
    expect(deep).toMatchObject({ hasMore: false, next_cursor: null });
    expect(deep.data).toHaveLength(50);
    const tooDeep = await h.call(Rpc.journeysList, { ctx: ctx(T), query: { pageSize: '50', page: '201' } });
    expect(tooDeep.err).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ field: 'after', message: expect.stringContaining('after') })] });
  });

  it('refuses a cursor that is not one of this list: edited, of other filters, with page', async () => {
    const T = 'ten_cursor';
    await seed(T, 12);
    const p = await list(T, { pageSize: '5' });
    const bad: Array<Record<string, string>> = [
      { after: `${p.next_cursor!.slice(0, -1)}${p.next_cursor!.endsWith('A') ? 'B' : 'A'}` },
      { after: 'bm90LWEtY3Vyc29y' },
      { after: p.next_cursor!, contact_id: 'ct_someone' },
      { after: p.next_cursor!, page: '2' },
    ];
    for (const query of bad) {
      const r = await h.call(Rpc.journeysList, { ctx: ctx(T), query });
      expect({ query, err: r.err?.code }).toEqual({ query, err: 'invalid_request' });
    }
    // Another tenant presenting it walks only its own (empty) list: every query is the tenant's.
    const other = await h.call(Rpc.journeysList, { ctx: ctx('ten_cursor_other'), query: { after: p.next_cursor! } });
    expect(other.response).toMatchObject({ data: [], total: 0, hasMore: false, next_cursor: null });
  });

  it("walks a journey's touchpoints by cursor in time order, ties in arrival order, while more arrive", async () => {
    const T = 'ten_tp';
    const j = await create(T, { anonymous_id: 'tp-walk' });
    const other = await create(T, { anonymous_id: 'tp-other', touchpoints: [{ type: 'custom', occurred_at: '2024-01-01T00:00:00Z' }] });
    // 120 at the same instant, then 30 later ones.
    await ds.query(
      `INSERT INTO touchpoints (id, journey_id, type, occurred_at, source)
       SELECT 'tp_w' || lpad(g::text, 4, '0'), $1, 'custom', CASE WHEN g <= 120 THEN timestamptz '2024-01-01' ELSE timestamptz '2024-01-01' + g * interval '1 second' END, 's' || g
         FROM generate_series(1, 150) g ORDER BY g`,
      [j.id],
    );
    const expected = Array.from({ length: 150 }, (_, i) => `s${i + 1}`);
    const sources: string[] = [];
    let after: string | undefined;
    let round = 0;
    for (;;) {
      const p = await touchpoints(T, j.id, { pageSize: '23', ...(after ? { after } : {}) });
      expect(p.total).toBeGreaterThanOrEqual(150);
      sources.push(...p.data.map((t) => t.source!));
      // Later touchpoints arrive while the walk goes on: they are after everything, so they come at the end.
      if (round++ < 3) await h.ok(Rpc.journeysAddTouchpoint, { ctx: ctx(T), params: { id: j.id }, body: { type: 'custom', occurred_at: '2030-01-01T00:00:00Z', source: `late${round}` } });
      if (p.next_cursor === null) break;
      after = p.next_cursor;
    }
    expect(sources).toEqual([...expected, 'late1', 'late2', 'late3']);
    // A cursor of one journey is no cursor of another's.
    const p = await touchpoints(T, j.id, { pageSize: '5' });
    const r = await h.call(Rpc.journeysListTouchpoints, { ctx: ctx(T), params: { id: other.id }, query: { after: p.next_cursor! } });
    expect(r.err).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ field: 'after' })] });
  });
});
