import { JourneyView, pageOf, Rpc, type Environment, type RequestContext } from '@keyway/contracts';
import { startRpcService, type RpcServiceHarness } from '@keyway/testing';
import type { Subscription } from '@nats-io/transport-node';
import { DataSource } from 'typeorm';
import { AppModule } from '../app.module';
import { JourneysEnv, SERVICE } from '../config';

const Page = pageOf(JourneyView);

/**
 * DESIGN "Test mode": a `kw_test_` key reads and writes only the tenant's test journeys and a
 * `kw_live_` key only its live ones; an id of one mode is 404 in the other on every subject, lists
 * never mix, and `DELETE /v1/test-data` empties the test journeys alone.
 */
describe('journeys: test mode', () => {
  let h: RpcServiceHarness<unknown>;
  /** What the stand-in for contacts was asked: journeys must ask in the caller's mode. */
  const asked: unknown[] = [];
  let contactsStub: Subscription;

  const ctx = (tenant: string, mode: Environment | undefined): RequestContext => ({ ...h.ctx(tenant), ...(mode ? { environment: mode } : {}) });
  const ok = async (subject: string, data: unknown): Promise<JourneyView> => JourneyView.parse(await h.ok(subject, data));
  const create = (tenant: string, mode: Environment | undefined, body: Record<string, unknown>) => ok(Rpc.journeysCreate, { ctx: ctx(tenant, mode), body });
  const list = async (tenant: string, mode: Environment | undefined, query: Record<string, string> = {}) =>
    Page.parse(await h.ok(Rpc.journeysList, { ctx: ctx(tenant, mode), query }));
  const touchpoint = { type: 'page_view', occurred_at: '2024-01-01T00:00:00Z' };

  beforeAll(async () => {
    h = await startRpcService('jmodes', { name: SERVICE, env: JourneysEnv, module: (config) => AppModule.forRoot(config) });
    contactsStub = h.nc.subscribe(Rpc.contactsExists, {
      callback: (_e, msg) => {
        const data = (msg.json() as { data: { environment?: string; id: string } }).data;
        asked.push(data);
        // ct_live_… exist in live only, ct_test_… in test only.
        msg.respond(JSON.stringify({ response: { exists: data.id.startsWith(`ct_${data.environment ?? 'live'}_`) } }));
      },
    });
    await h.nc.flush();
  });
  afterAll(async () => {
    contactsStub?.unsubscribe();
    await h?.close();
  });

  it('an id of one mode is not_found in the other, on every subject, and nothing changes', async () => {
    const T = 'ten_modes';
    const live = await create(T, 'live', { anonymous_id: 'l', touchpoints: [touchpoint] });
    const test = await create(T, 'test', { anonymous_id: 't', touchpoints: [touchpoint] });
    const attempts: Array<[string, Record<string, unknown>]> = [
      [Rpc.journeysGet, {}],
      [Rpc.journeysListTouchpoints, { query: {} }],
      [Rpc.journeysUpdate, { body: { anonymous_id: 'stolen' } }],
      [Rpc.journeysUpdate, { body: { contact_id: 'ct_live_x' } }],
      [Rpc.journeysAddTouchpoint, { body: touchpoint }],
      [Rpc.journeysAddConversion, { body: { name: 'x', occurred_at: '2024-01-02T00:00:00Z' } }],
      [Rpc.journeysDelete, {}],
    ];
    for (const [journey, otherMode] of [
      [live, 'test'],
      [test, 'live'],
    ] as const) {
      for (const [subject, extra] of attempts) {
        const r = await h.call(subject, { ctx: ctx(T, otherMode), params: { id: journey.id }, ...extra });
        expect({ subject, mode: otherMode, code: r.err?.code }).toEqual({ subject, mode: otherMode, code: 'not_found' });
      }
    }
    expect(await ok(Rpc.journeysGet, { ctx: ctx(T, 'live'), params: { id: live.id } })).toEqual(live);
    expect(await ok(Rpc.journeysGet, { ctx: ctx(T, 'test'), params: { id: test.id } })).toEqual(test);
    // A context without a mode (the operator, the system) acts on live data.
    expect(await ok(Rpc.journeysGet, { ctx: ctx(T, undefined), params: { id: live.id } })).toEqual(live);
    expect((await h.call(Rpc.journeysGet, { ctx: ctx(T, undefined), params: { id: test.id } })).err?.code).toBe('not_found');
  });

  it('lists never mix modes, with or without a filter, by page or by cursor', async () => {
    const T = 'ten_modes_list';
    const liveIds: string[] = [];
    const testIds: string[] = [];
    for (let i = 0; i < 6; i++) {
      liveIds.push((await create(T, 'live', { contact_id: 'ct_live_1', anonymous_id: `l${i}` })).id);
      testIds.push((await create(T, 'test', { contact_id: 'ct_test_1', anonymous_id: `t${i}` })).id);
    }
    const walk = async (mode: Environment, query: Record<string, string>) => {
      const seen: string[] = [];
      let after: string | null | undefined;
      do {
        const p = await list(T, mode, { ...query, pageSize: '4', ...(after ? { after } : {}) });
        seen.push(...p.data.map((j) => j.id));
        after = p.next_cursor;
      } while (after);
      return seen;
    };
    expect(await walk('live', {})).toEqual([...liveIds].reverse());
    expect(await walk('test', {})).toEqual([...testIds].reverse());
    expect((await list(T, 'live')).total).toBe(6);
    expect((await list(T, 'test', { contact_id: 'ct_test_1' })).data.map((j) => j.id)).toEqual([...testIds].reverse().slice(0, 10));
    // The same contact id in the other mode matches nothing.
    expect((await list(T, 'live', { contact_id: 'ct_test_1' })).total).toBe(0);
    // A cursor issued to one mode's list is refused by the other's.
    const firstTest = await list(T, 'test', { pageSize: '2' });
    const replayed = await h.call(Rpc.journeysList, { ctx: ctx(T, 'live'), query: { after: firstTest.next_cursor! } });
    expect(replayed.err).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ field: 'after' })] });
  });

  it("checks a contact_id in the caller's mode", async () => {
    const T = 'ten_modes_contacts';
    asked.length = 0;
    expect((await create(T, 'test', { contact_id: 'ct_test_a' })).contact_id).toBe('ct_test_a');
    // A live contact does not exist for a test key, nor a test contact for a live key.
    const refused = [
      await h.call(Rpc.journeysCreate, { ctx: ctx(T, 'test'), body: { contact_id: 'ct_live_a' } }),
      await h.call(Rpc.journeysCreate, { ctx: ctx(T, 'live'), body: { contact_id: 'ct_test_a' } }),
    ];
    for (const r of refused) expect(r.err).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ field: 'contact_id' })] });
    expect(asked).toEqual([
      { tenant_id: T, id: 'ct_test_a', environment: 'test' },
      { tenant_id: T, id: 'ct_live_a', environment: 'test' },
      { tenant_id: T, id: 'ct_test_a', environment: 'live' },
    ]);
  });

  it("empties the tenant's test journeys only, with their touchpoints, idempotently, and only from test mode", async () => {
    const T = 'ten_purge';
    const live = await create(T, 'live', { anonymous_id: 'keep', touchpoints: [touchpoint] });
    const others = await create('ten_purge_other', 'test', { anonymous_id: 'theirs', touchpoints: [touchpoint] });
    for (let i = 0; i < 12; i++) await create(T, 'test', { anonymous_id: `t${i}`, touchpoints: [touchpoint, touchpoint] });
    expect((await list(T, 'test')).total).toBe(12);

    for (const mode of ['live', undefined] as const) {
      const r = await h.call(Rpc.journeysPurgeTestData, { ctx: ctx(T, mode) });
      expect(r.err?.code).toBe('forbidden');
    }
    expect((await list(T, 'test')).total).toBe(12);

    for (let i = 0; i < 2; i++) {
      const r = await h.call(Rpc.journeysPurgeTestData, { ctx: ctx(T, 'test') });
      expect(r.err).toBeUndefined();
      expect(r.response).toBeNull();
    }
    expect((await list(T, 'test')).total).toBe(0);
    expect(await ok(Rpc.journeysGet, { ctx: ctx(T, 'live'), params: { id: live.id } })).toEqual(live);
    expect(await ok(Rpc.journeysGet, { ctx: ctx('ten_purge_other', 'test'), params: { id: others.id } })).toEqual(others);
    // Their touchpoints went with them: only the two kept journeys' remain.
    const ds = h.app.get(DataSource);
    const left = (await ds.query(`SELECT DISTINCT journey_id FROM touchpoints WHERE journey_id = ANY($1)`, [[live.id, others.id]])) as unknown[];
    expect(left).toHaveLength(2);
    expect((await ds.query(`SELECT count(*)::int AS n FROM touchpoints t JOIN journeys j ON j.id = t.journey_id WHERE j.tenant_id = $1 AND j.environment = 'test'`, [T]))[0].n).toBe(0);
  });
});
