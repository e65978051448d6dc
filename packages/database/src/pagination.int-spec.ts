import { KeywayError } from '@keyway/contracts';
import { Client } from 'pg';
import { dropDatabases, ensureDatabase } from './service-database';
import { cheapTotal, fetchPage, Keyset } from './pagination';

const ADMIN = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const NAME = `keyway_t${Date.now().toString(36)}${process.pid.toString(36)}_pagination_db`;
const URL_ = Object.assign(new URL(ADMIN), { pathname: `/${NAME}` }).toString();

const LIST = new Keyset({ list: 'items', columns: [{ column: 'created_at', type: 'timestamptz' }, { column: 'id', type: 'text' }], direction: 'desc' });
interface Item {
  id: string;
  tenant_id: string;
  kind: string;
}

/** The page's error for a bad `after`: the documented 400 naming the field. */
async function refusal(p: Promise<unknown>): Promise<{ code: string; fields: string[] }> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof KeywayError)) throw err;
    const details = (err.toBody().details ?? []) as Array<{ field: string }>;
    return { code: err.code, fields: details.map((d) => d.field) };
  }
  throw new Error('expected a refusal');
}

describe('fetchPage (keyset cursor and cheap total) on Postgres', () => {
  let db: Client;
  const page = (tenant: string, query: { page?: number; pageSize?: number; after?: string }, kind?: string, exactTotalUpTo?: number) =>
    fetchPage<Item>(db, {
      select: 'id, tenant_id, kind',
      from: 'items',
      where: 'tenant_id = $1 AND ($2::text IS NULL OR kind = $2)',
      params: [tenant, kind ?? null],
      keyset: LIST,
      query: { page: query.page ?? 1, pageSize: query.pageSize ?? 10, ...(query.after === undefined ? {} : { after: query.after }) },
      filters: { kind: kind ?? null },
      ...(exactTotalUpTo === undefined ? {} : { exactTotalUpTo }),
    });

  beforeAll(async () => {
    await ensureDatabase(URL_);
    db = new Client({ connectionString: URL_ });
    await db.connect();
    await db.query(`CREATE TABLE items (id text PRIMARY KEY, tenant_id text NOT NULL, kind text NOT NULL, created_at timestamptz NOT NULL)`);
    await db.query(`CREATE INDEX items_list ON items (tenant_id, created_at DESC, id DESC)`);
    // 300 rows for tenant a, many sharing one millisecond but not one microsecond (a JS Date
    // cursor would skip rows here), some sharing one timestamp exactly (the id breaks the tie).
    await db.query(
      `INSERT INTO items SELECT 'it_' || lpad(g::text, 5, '0'), 'a', CASE WHEN g % 3 = 0 THEN 'x' ELSE 'y' END,
              timestamptz '2026-01-01 00:00:00' + (g / 4) * interval '7 microseconds'
         FROM generate_series(1, 300) g`,
    );
    await db.query(`INSERT INTO items SELECT 'ot_' || g, 'b', 'x', now() FROM generate_series(1, 5) g`);
    await db.query('ANALYZE items');
  });
  afterAll(async () => {
    await db?.end();
    await dropDatabases(ADMIN, NAME);
  });

  it('walks the whole list with after while rows are inserted: none skipped, none repeated', async () => {
    const seen: string[] = [];
    let after: string | undefined;
    let n = 0;
    for (;;) {
      const p = await page('a', { pageSize: 7, ...(after === undefined ? {} : { after }) });
      seen.push(...p.data.map((r) => r.id));
      // New rows land at the head of the list (newest first), and some in the middle of the time range.
      await db.query(`INSERT INTO items VALUES ($1, 'a', 'y', now()), ($2, 'a', 'y', timestamptz '2026-01-01 00:00:00' + interval '150 microseconds')`, [`new_${n}`, `mid_${n}`]);
      n += 1;
      expect(p.hasMore).toBe(p.next_cursor !== null);
      if (p.next_cursor === null) break;
      after = p.next_cursor;
    }
    const original = seen.filter((id) => id.startsWith('it_'));
    expect(new Set(seen).size).toBe(seen.length);
    expect(original.sort()).toEqual(Array.from({ length: 300 }, (_, i) => `it_${String(i + 1).padStart(5, '0')}`));
    expect(seen.some((id) => id.startsWith('ot_'))).toBe(false);
  });

  it('a page by number and by cursor agree, and hasMore is exact at the end', async () => {
    const first = await page('b', { pageSize: 2 });
    const second = await page('b', { pageSize: 2, after: first.next_cursor! });
    const byNumber = await page('b', { page: 2, pageSize: 2 });
    expect(second.data).toEqual(byNumber.data);
    const last = await page('b', { page: 3, pageSize: 2 });
    expect(last).toMatchObject({ total: 5, hasMore: false, next_cursor: null });
    expect(last.data).toHaveLength(1);
    expect(last.total_is_estimate).toBeUndefined();
  });

  it('refuses an edited, truncated or borrowed cursor with 400 naming after, never a database error', async () => {
    const { next_cursor } = await page('a', { pageSize: 3 });
    const c = next_cursor!;
    const [body, mac] = c.split('.') as [string, string];
    const forged = `${Buffer.from(JSON.stringify(['not a time', 'x'])).toString('base64url')}.${mac}`;
    const flipped = `${body.slice(0, -1)}${body.endsWith('A') ? 'B' : 'A'}.${mac}`;
    for (const bad of [c.slice(0, -1), `${c}x`, forged, flipped, 'nodot', '.', `${body}.`]) {
      expect(await refusal(page('a', { after: bad }))).toEqual({ code: 'invalid_request', fields: ['after'] });
    }
    // Another list's cursor, or this list's with other filters.
    const other = new Keyset({ ...LIST.spec, list: 'others' });
    const foreign = fetchPage(db, { select: 'id', from: 'items', where: 'tenant_id = $1', params: ['a'], keyset: other, query: { page: 1, pageSize: 3, after: c } });
    expect(await refusal(foreign)).toEqual({ code: 'invalid_request', fields: ['after'] });
    expect(await refusal(page('a', { after: c }, 'x'))).toEqual({ code: 'invalid_request', fields: ['after'] });
  });

  it('counts exactly up to the threshold and flags the estimate above it; hasMore stays exact', async () => {
    expect(await cheapTotal(db, { from: 'items', where: 'tenant_id = $1', params: ['b'], exactUpTo: 5 })).toEqual({ n: 5, estimate: false });
    const est = await cheapTotal(db, { from: 'items', where: 'tenant_id = $1', params: ['a'], exactUpTo: 50 });
    expect(est.estimate).toBe(true);
    expect(est.n).toBeGreaterThan(50);
    const p = await page('a', { page: 2, pageSize: 10 }, undefined, 50);
    expect(p).toMatchObject({ total_is_estimate: true, hasMore: true });
    expect(p.total).toBeGreaterThanOrEqual(21);
    const small = await page('a', {}, 'x', 1000);
    expect(small.total_is_estimate).toBeUndefined();
    expect(small.total).toBe((await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM items WHERE tenant_id = 'a' AND kind = 'x'`)).rows[0]!.n);
  });
});
