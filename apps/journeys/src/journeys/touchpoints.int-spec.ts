import { startRpcService, type RpcServiceHarness } from '@keyway/testing';
import {
  FREEFORM_MAX_BYTES,
  JOURNEY_EMBEDDED_TOUCHPOINTS,
  JOURNEY_MAX_CONVERSIONS,
  JOURNEY_MAX_TOUCHPOINTS,
  JourneyView,
  NATS_MAX_PAYLOAD,
  PAGE_MAX,
  REPLY_MAX_BYTES,
  Rpc,
  TOUCHPOINT_MAX_BYTES,
  TouchpointView,
  jsonBytes,
  pageOf,
  type ErrorBody,
} from '@keyway/contracts';
import { DataSource } from 'typeorm';
import { AppModule } from '../app.module';
import { JourneysEnv, SERVICE } from '../config';

const Page = pageOf(TouchpointView);
const minute = (i: number) => new Date(Date.UTC(2024, 0, 1) + i * 60_000).toISOString();
/** A first_touch or last_touch at this time. */
const touchAt = (at: string) => expect.objectContaining({ occurred_at: at });
/** The largest touchpoint a client can reasonably send: full properties, a long url, every text field full. */
const bigTouchpoint = (i: number) => ({
  type: 'page_view',
  occurred_at: minute(i),
  url: `https://x.test/${String(i).padStart(5, '0')}/${'a'.repeat(2048 - 21)}`,
  source: 's'.repeat(200),
  medium: 'm'.repeat(200),
  campaign: 'c'.repeat(200),
  properties: { p: 'x'.repeat(FREEFORM_MAX_BYTES - 8) },
});

/**
 * DESIGN "Sizes": a journey embeds its latest touchpoints, at most 100 and never more than fit in
 * one message, says how many it holds, and pages the rest at journeys.touchpoints.list. Before,
 * every answer carried every touchpoint: past about 54 large ones the answer to a touchpoint POST
 * no longer fitted in NATS's 1 MiB, so the POST timed out with 503 after it was saved (a retry
 * duplicated it), and the journey could not be read any more.
 */
describe('journeys: touchpoints, sizes and limits', () => {
  let h: RpcServiceHarness<unknown>;
  const ctx = (tenant: string) => h.ctx(tenant);

  beforeAll(async () => {
    h = await startRpcService('touchpoints', { name: SERVICE, env: JourneysEnv, module: (config) => AppModule.forRoot(config) });
  });
  afterAll(() => h?.close());

  /** The raw reply, to measure what really crossed NATS; a reply that never comes fails the test. */
  async function raw(subject: string, data: unknown): Promise<{ bytes: number; response?: unknown; err?: ErrorBody }> {
    const m = await h.nc.request(subject, JSON.stringify({ pattern: subject, data, id: 'r' }), { timeout: 10_000 });
    return { bytes: m.data.length, ...m.json<{ response?: unknown; err?: ErrorBody }>() };
  }
  async function journey(subject: string, data: unknown): Promise<JourneyView & { bytes: number }> {
    const r = await raw(subject, data);
    if (r.err) throw new Error(`${subject}: ${JSON.stringify(r.err)}`);
    expect(r.bytes).toBeLessThan(NATS_MAX_PAYLOAD);
    return { ...JourneyView.parse(r.response), bytes: r.bytes };
  }
  const create = (tenant: string, body: unknown) => journey(Rpc.journeysCreate, { ctx: ctx(tenant), body });
  const get = (tenant: string, id: string) => journey(Rpc.journeysGet, { ctx: ctx(tenant), params: { id } });
  const add = (tenant: string, id: string, body: unknown) => raw(Rpc.journeysAddTouchpoint, { ctx: ctx(tenant), params: { id }, body });
  const addOk = (tenant: string, id: string, body: unknown) => journey(Rpc.journeysAddTouchpoint, { ctx: ctx(tenant), params: { id }, body });
  const page = async (tenant: string, id: string, query: Record<string, string> = {}) => {
    const r = await raw(Rpc.journeysListTouchpoints, { ctx: ctx(tenant), params: { id }, query });
    if (r.err) throw new Error(JSON.stringify(r.err));
    expect(r.bytes).toBeLessThan(NATS_MAX_PAYLOAD);
    return Page.parse(r.response);
  };
  async function all(tenant: string, id: string): Promise<TouchpointView[]> {
    const out: TouchpointView[] = [];
    for (let p = 1; ; p++) {
      const got = await page(tenant, id, { page: String(p), pageSize: String(PAGE_MAX) });
      out.push(...got.data);
      if (!got.hasMore) return out;
    }
  }
  /** A journey already holding n small touchpoints, written straight to its table: n POSTs would take minutes. */
  async function filled(tenant: string, n: number): Promise<string> {
    const j = await create(tenant, { anonymous_id: `filled-${n}` });
    await h.app.get(DataSource).query(
      `INSERT INTO touchpoints (id, journey_id, type, occurred_at)
       SELECT 'tp_fill' || g || '_' || $1, $1, 'custom', timestamptz '2024-01-01' + g * interval '1 second' FROM generate_series(1, $2::int) g`,
      [j.id, n],
    );
    return j.id;
  }

  it('embeds the latest 100 touchpoints in time order with touchpoints_total, however many it holds', async () => {
    const start = await create('ten_a', {
      anonymous_id: 'busy',
      touchpoints: Array.from({ length: JOURNEY_EMBEDDED_TOUCHPOINTS }, (_, i) => ({ type: 'custom', occurred_at: minute(i + 10), source: `n${i + 10}` })),
    });
    expect(start).toMatchObject({ touchpoints_total: 100, first_touch: touchAt(minute(10)), last_touch: touchAt(minute(109)) });
    expect(start.touchpoints).toHaveLength(100);

    // The 101st, later than all: answered (201 at the gateway) with the latest 100, the oldest left out.
    const later = await addOk('ten_a', start.id, { type: 'page_view', occurred_at: minute(500), source: 'n500' });
    expect(later.touchpoints_total).toBe(101);
    expect(later.touchpoints.map((t) => t.source)).toEqual([...Array.from({ length: 99 }, (_, i) => `n${i + 11}`), 'n500']);
    expect(later).toMatchObject({ first_touch: touchAt(minute(10)), last_touch: touchAt(minute(500)) });

    // Earlier than all: it is the first touch, counted, but not among the latest 100.
    const earlier = await addOk('ten_a', start.id, { type: 'campaign', occurred_at: minute(0), source: 'n0' });
    // The first touch is not embedded, and still answered whole.
    expect(earlier).toMatchObject({ touchpoints_total: 102, last_touch: touchAt(minute(500)) });
    expect(earlier.first_touch).toEqual({ type: 'campaign', source: 'n0', medium: null, campaign: null, url: null, occurred_at: minute(0) });
    expect(earlier.touchpoints).toEqual(later.touchpoints);
    const { bytes: _b1, ...answered } = earlier;
    const { bytes: _b2, ...read } = await get('ten_a', start.id);
    expect(read).toEqual(answered);

    // Paged in full, in time order: the embedded ones are its tail.
    const every = await all('ten_a', start.id);
    expect(every).toHaveLength(102);
    expect(every.map((t) => t.source)).toEqual(['n0', ...Array.from({ length: 100 }, (_, i) => `n${i + 10}`), 'n500']);
    expect(every.slice(-100)).toEqual(earlier.touchpoints);
  });

  it('pages touchpoints in time order (arrival order at equal times) with the page envelope', async () => {
    const at = '2024-02-01T00:00:00Z';
    const j = await create('ten_a', { anonymous_id: 'pages', touchpoints: ['c', 'd'].map((s) => ({ type: 'custom', occurred_at: minute(5), source: s })) });
    await addOk('ten_a', j.id, { type: 'custom', occurred_at: minute(5), source: 'e' });
    await addOk('ten_a', j.id, { type: 'custom', occurred_at: minute(1), source: 'a' });
    await addOk('ten_a', j.id, { type: 'custom', occurred_at: at, source: 'f' });
    await addOk('ten_a', j.id, { type: 'custom', occurred_at: minute(1), source: 'b' });

    const first = await page('ten_a', j.id, { pageSize: '4' });
    expect(first).toMatchObject({ page: 1, pageSize: 4, total: 6, hasMore: true });
    expect(first.data.map((t) => t.source)).toEqual(['a', 'b', 'c', 'd']);
    expect(first.data[0]).toEqual({ id: expect.stringMatching(/^tp_/), type: 'custom', occurred_at: minute(1), source: 'a', url: null, medium: null, campaign: null, properties: null });
    const second = await page('ten_a', j.id, { page: '2', pageSize: '4' });
    expect(second).toMatchObject({ page: 2, total: 6, hasMore: false });
    expect(second.data.map((t) => t.source)).toEqual(['e', 'f']);
    expect(await page('ten_a', j.id, { page: '3', pageSize: '4' })).toMatchObject({ data: [], total: 6, hasMore: false });
    expect(await page('ten_a', j.id)).toMatchObject({ page: 1, pageSize: 10, total: 6, hasMore: false });

    for (const query of [{ pageSize: '51' }, { page: '0' }, { after: 'x' }]) {
      expect((await raw(Rpc.journeysListTouchpoints, { ctx: ctx('ten_a'), params: { id: j.id }, query })).err?.code).toBe('invalid_request');
    }
    for (const [tenant, id] of [['ten_b', j.id], ['ten_a', 'jr_doesnotexist00000000']]) {
      expect((await raw(Rpc.journeysListTouchpoints, { ctx: ctx(tenant!), params: { id }, query: {} })).err?.code).toBe('not_found');
    }
  });

  it('stays readable with many of the largest touchpoints: every POST answers, GET and pages fit in a message', async () => {
    expect(jsonBytes(bigTouchpoint(0))).toBeLessThanOrEqual(TOUCHPOINT_MAX_BYTES);
    const j = await create('ten_big', { anonymous_id: 'heavy' });
    const n = 60; // about 53 of them fill an answer
    let last: JourneyView | undefined;
    for (let i = 0; i < n; i++) last = await addOk('ten_big', j.id, bigTouchpoint(i));
    expect(last).toMatchObject({ touchpoints_total: n, first_touch: touchAt(minute(0)), last_touch: touchAt(minute(n - 1)) });
    // As many of the latest as fit, in time order, ending with the newest.
    const embedded = last!.touchpoints;
    expect(embedded.length).toBeGreaterThan(40);
    expect(embedded.length).toBeLessThan(n);
    expect(embedded.map((t) => t.occurred_at)).toEqual(Array.from({ length: embedded.length }, (_, k) => minute(n - embedded.length + k)));
    expect(jsonBytes(last)).toBeLessThanOrEqual(REPLY_MAX_BYTES);

    const read = await get('ten_big', j.id);
    expect(read.touchpoints).toEqual(embedded);
    // Every one can be read back whole, 50 to a page.
    const every = await all('ten_big', j.id);
    expect(every).toHaveLength(n);
    expect(every.map(({ id: _id, ...t }) => t)).toEqual(Array.from({ length: n }, (_, i) => bigTouchpoint(i)));

    // A list of journeys with it (and the page full of others) fits too.
    for (let i = 0; i < PAGE_MAX - 1; i++) await create('ten_big', { anonymous_id: `other-${i}`, touchpoints: [bigTouchpoint(i)] });
    const listed = await raw(Rpc.journeysList, { ctx: ctx('ten_big'), query: { pageSize: String(PAGE_MAX) } });
    expect(listed.err).toBeUndefined();
    expect(listed.bytes).toBeLessThan(NATS_MAX_PAYLOAD);
    const journeys = pageOf(JourneyView).parse(listed.response).data;
    expect(journeys).toHaveLength(PAGE_MAX);
    const heavy = journeys.find((x) => x.id === j.id)!;
    expect(heavy).toMatchObject({ touchpoints_total: n, first_touch: touchAt(minute(0)), last_touch: touchAt(minute(n - 1)) });
    expect(heavy.touchpoints).toEqual(embedded.slice(embedded.length - heavy.touchpoints.length));
  });

  it('refuses a touchpoint over the size budget, naming the field, and saves nothing', async () => {
    const j = await create('ten_a', { anonymous_id: 'strict-sizes', touchpoints: [{ type: 'custom', occurred_at: minute(0) }] });
    const cases: Array<[unknown, string]> = [
      [{ ...bigTouchpoint(1), properties: { p: 'x'.repeat(FREEFORM_MAX_BYTES - 7) } }, 'properties'],
      [{ type: 'custom', occurred_at: minute(1), properties: JSON.parse('{"d":'.repeat(32) + '{}' + '}'.repeat(32)) as unknown }, 'properties'],
      [{ type: 'custom', occurred_at: minute(1), properties: { k: 'nul\u0000' } }, 'properties'],
      // Each field within its own limit, but \u0001 is six bytes as JSON: 2,048 of them in the url.
      [{ ...bigTouchpoint(1), url: '\u0001'.repeat(2048) }, '(body)'],
    ];
    for (const [body, field] of cases) {
      const r = await add('ten_a', j.id, body);
      expect(r.err).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ field })] });
      const created = await raw(Rpc.journeysCreate, { ctx: ctx('ten_a'), body: { anonymous_id: 'never', touchpoints: [body] } });
      expect(created.err).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ field: field === '(body)' ? 'touchpoints.0' : 'touchpoints.0.properties' })] });
    }
    const after = await get('ten_a', j.id);
    expect(after).toMatchObject({ touchpoints_total: 1 });
    const listed = await raw(Rpc.journeysList, { ctx: ctx('ten_a'), query: { pageSize: '50' } });
    expect((listed.response as { data: JourneyView[] }).data.filter((x) => x.anonymous_id === 'never')).toEqual([]);
  });

  it(`holds at most ${JOURNEY_MAX_TOUCHPOINTS} touchpoints: beyond is conflict, saves nothing, and holds under concurrency`, async () => {
    const id = await filled('ten_cap', JOURNEY_MAX_TOUCHPOINTS - 5);
    expect(await get('ten_cap', id)).toMatchObject({ touchpoints_total: JOURNEY_MAX_TOUCHPOINTS - 5 });
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => add('ten_cap', id, { type: 'custom', occurred_at: minute(100_000 + i) })));
    expect(answers.filter((r) => !r.err)).toHaveLength(5);
    for (const r of answers.filter((x) => x.err)) {
      expect(r.err).toMatchObject({ code: 'conflict', error: expect.stringContaining(String(JOURNEY_MAX_TOUCHPOINTS)), limit: { touchpoints: JOURNEY_MAX_TOUCHPOINTS } });
    }
    const full = await get('ten_cap', id);
    expect(full.touchpoints_total).toBe(JOURNEY_MAX_TOUCHPOINTS);
    expect(full.touchpoints).toHaveLength(JOURNEY_EMBEDDED_TOUCHPOINTS);
    expect((await page('ten_cap', id, { page: String(JOURNEY_MAX_TOUCHPOINTS / PAGE_MAX), pageSize: String(PAGE_MAX) })).hasMore).toBe(false);
    expect((await add('ten_cap', id, { type: 'custom', occurred_at: minute(0) })).err?.code).toBe('conflict');
    expect((await get('ten_cap', id)).touchpoints_total).toBe(JOURNEY_MAX_TOUCHPOINTS);
  });

  it(`holds at most ${JOURNEY_MAX_CONVERSIONS} conversions, all embedded`, async () => {
    const j = await create('ten_cv', { anonymous_id: 'convert-a-lot' });
    const answers = await Promise.all(
      Array.from({ length: JOURNEY_MAX_CONVERSIONS + 5 }, (_, i) =>
        raw(Rpc.journeysAddConversion, { ctx: ctx('ten_cv'), params: { id: j.id }, body: { name: `c${i}`, occurred_at: minute(i), value: i } }),
      ),
    );
    expect(answers.filter((r) => !r.err)).toHaveLength(JOURNEY_MAX_CONVERSIONS);
    for (const r of answers.filter((x) => x.err)) expect(r.err?.code).toBe('conflict');
    const read = await get('ten_cv', j.id);
    expect(read.conversions).toHaveLength(JOURNEY_MAX_CONVERSIONS);
    expect(read.conversions_total).toBe(JOURNEY_MAX_CONVERSIONS);
  });
});
