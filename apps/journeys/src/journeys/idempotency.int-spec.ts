import { createHash } from 'node:crypto';
import { JourneyView, pageOf, Rpc, type Environment, type ErrorBody, type RequestContext } from '@keyway/contracts';
import { startRpcService, type RpcServiceHarness } from '@keyway/testing';
import type { Subscription } from '@nats-io/transport-node';
import { DataSource } from 'typeorm';
import { AppModule } from '../app.module';
import { JourneysEnv, SERVICE } from '../config';

type Reply = { response?: unknown; err?: ErrorBody; replayed?: boolean };

/**
 * DESIGN "Idempotency" on every journeys POST (create, touchpoints, conversions): the first
 * answer replayed (`replayed: true`, which the gateway turns into `Idempotent-Replayed: true`),
 * another request under the same key `idempotency_mismatch`, `conflict` while the first is still
 * running; the record is written in the same transaction as the write and its event.
 */
describe('journeys: idempotent POSTs', () => {
  let h: RpcServiceHarness<unknown>;
  let ds: DataSource;
  let contactsStub: Subscription;
  /** What the stand-in for contacts answers: `exists`, or nothing at all (contacts down). */
  let contacts: 'exists' | 'missing' | 'down' = 'exists';
  let n = 0;

  const key = () => `idem-key-${++n}-${Date.now()}`;
  const hash = (subject: string, params: unknown, body: unknown) => createHash('sha256').update(JSON.stringify([subject, params, body])).digest('hex');
  /** A POST as the gateway forwards it: the key and a hash of what the request asks. */
  async function post(subject: string, o: { tenant: string; mode?: Environment; key?: string; params?: Record<string, string>; body: unknown }): Promise<Reply> {
    const ctx: RequestContext = {
      ...h.ctx(o.tenant),
      environment: o.mode ?? 'live',
      ...(o.key ? { idempotency: { key: o.key, body_hash: hash(subject, o.params ?? {}, o.body) } } : {}),
    };
    const m = await h.nc.request(subject, JSON.stringify({ pattern: subject, data: { ctx, params: o.params ?? {}, body: o.body }, id: String(++n) }), { timeout: 20_000 });
    return m.json<Reply>();
  }
  const count = async (sql: string, params: unknown[]) => ((await ds.query(sql, params)) as Array<{ n: number }>)[0]!.n;
  const journeysOf = (tenant: string, mode: Environment = 'live') => count(`SELECT count(*)::int AS n FROM journeys WHERE tenant_id = $1 AND environment = $2`, [tenant, mode]);
  const eventsAbout = (id: string) => count(`SELECT count(*)::int AS n FROM outbox WHERE payload->>'resource_id' = $1`, [id]);

  beforeAll(async () => {
    h = await startRpcService('jidem', { name: SERVICE, env: JourneysEnv, module: (config) => AppModule.forRoot(config), overrides: { CONTACTS_TIMEOUT_MS: '200' } });
    ds = h.app.get(DataSource);
    contactsStub = h.nc.subscribe(Rpc.contactsExists, {
      callback: (_e, msg) => {
        if (contacts !== 'down') msg.respond(JSON.stringify({ response: { exists: contacts === 'exists' } }));
      },
    });
    await h.nc.flush();
  });
  afterAll(async () => {
    contactsStub?.unsubscribe();
    await h?.close();
  });
  afterEach(() => {
    contacts = 'exists';
  });

  it('replays a create, a touchpoint and a conversion: one write and one event each, the same answer', async () => {
    const T = 'ten_idem_replay';
    const k = key();
    const body = { contact_id: 'ct_someone', touchpoints: [{ type: 'page_view', occurred_at: '2024-01-01T00:00:00Z' }] };
    const first = await post(Rpc.journeysCreate, { tenant: T, key: k, body });
    expect(first.err).toBeUndefined();
    expect(first.replayed).toBeUndefined();
    const j = JourneyView.parse(first.response);
    // The retry is answered from the record, even with contacts down by now.
    contacts = 'down';
    const again = await post(Rpc.journeysCreate, { tenant: T, key: k, body });
    expect(again).toMatchObject({ replayed: true, response: first.response });
    expect(await journeysOf(T)).toBe(1);
    expect(await eventsAbout(j.id)).toBe(1);

    const tk = key();
    const tp = { type: 'custom', occurred_at: '2024-01-02T00:00:00Z', source: 'retry' };
    const added = await post(Rpc.journeysAddTouchpoint, { tenant: T, key: tk, params: { id: j.id }, body: tp });
    const addedAgain = await post(Rpc.journeysAddTouchpoint, { tenant: T, key: tk, params: { id: j.id }, body: tp });
    expect(addedAgain).toMatchObject({ replayed: true, response: added.response });
    expect(JourneyView.parse(added.response).touchpoints_total).toBe(2);

    const ck = key();
    const cv = { name: 'purchase', occurred_at: '2024-01-03T00:00:00Z', value: 12 };
    const converted = await post(Rpc.journeysAddConversion, { tenant: T, key: ck, params: { id: j.id }, body: cv });
    const convertedAgain = await post(Rpc.journeysAddConversion, { tenant: T, key: ck, params: { id: j.id }, body: cv });
    expect(convertedAgain).toMatchObject({ replayed: true, response: converted.response });

    const now = JourneyView.parse((await post(Rpc.journeysGet, { tenant: T, params: { id: j.id }, body: undefined })).response);
    expect(now).toMatchObject({ touchpoints_total: 2, conversions_total: 1 });
    // created + converted, once each.
    expect(await eventsAbout(j.id)).toBe(2);
    // Without a key every POST is a new write, as before.
    await post(Rpc.journeysAddTouchpoint, { tenant: T, params: { id: j.id }, body: tp });
    await post(Rpc.journeysAddTouchpoint, { tenant: T, params: { id: j.id }, body: tp });
    expect(JourneyView.parse((await post(Rpc.journeysGet, { tenant: T, params: { id: j.id }, body: undefined })).response).touchpoints_total).toBe(4);
  });

  it('answers idempotency_mismatch for another request under the same key, and writes nothing', async () => {
    const T = 'ten_idem_mismatch';
    const k = key();
    const j = JourneyView.parse((await post(Rpc.journeysCreate, { tenant: T, key: k, body: { anonymous_id: 'a' } })).response);
    const other = await post(Rpc.journeysCreate, { tenant: T, key: k, body: { anonymous_id: 'b' } });
    expect(other.err?.code).toBe('idempotency_mismatch');
    // The same key on another subject is another request too.
    const tp = await post(Rpc.journeysAddTouchpoint, { tenant: T, key: k, params: { id: j.id }, body: { type: 'custom', occurred_at: '2024-01-01T00:00:00Z' } });
    expect(tp.err?.code).toBe('idempotency_mismatch');
    expect(await journeysOf(T)).toBe(1);
    expect(JourneyView.parse((await post(Rpc.journeysGet, { tenant: T, params: { id: j.id }, body: undefined })).response).touchpoints_total).toBe(0);
  });

  it('keys are scoped to the tenant and the mode', async () => {
    const k = key();
    const body = { anonymous_id: 'same' };
    const a = await post(Rpc.journeysCreate, { tenant: 'ten_idem_a', key: k, body });
    const b = await post(Rpc.journeysCreate, { tenant: 'ten_idem_b', key: k, body });
    const t = await post(Rpc.journeysCreate, { tenant: 'ten_idem_a', mode: 'test', key: k, body });
    for (const r of [a, b, t]) expect(r.replayed).toBeUndefined();
    expect(new Set([a, b, t].map((r) => (r.response as { id: string }).id)).size).toBe(3);
  });

  it('50 concurrent identical creates under one key make one journey; each answer is the first, a replay of it, or conflict', async () => {
    const T = 'ten_idem_race';
    const k = key();
    const body = { anonymous_id: 'racer', touchpoints: [{ type: 'page_view', occurred_at: '2024-01-01T00:00:00Z' }] };
    const answers = await Promise.all(Array.from({ length: 50 }, () => post(Rpc.journeysCreate, { tenant: T, key: k, body })));
    expect(await journeysOf(T)).toBe(1);
    const [id] = ((await ds.query(`SELECT id FROM journeys WHERE tenant_id = $1`, [T])) as Array<{ id: string }>).map((r) => r.id);
    const firsts = answers.filter((r) => !r.err && !r.replayed);
    expect(firsts).toHaveLength(1);
    for (const r of answers) {
      if (r.err) expect(r.err.code).toBe('conflict');
      else expect((r.response as { id: string }).id).toBe(id);
    }
    expect(await eventsAbout(id!)).toBe(1);
    // A retry afterwards replays.
    expect(await post(Rpc.journeysCreate, { tenant: T, key: k, body })).toMatchObject({ replayed: true, response: firsts[0]!.response });
  });

  it('replays a refusal the logic decided, but not a conflict or an outage', async () => {
    const T = 'ten_idem_refusals';
    // An unknown contact: 400, kept; the retry gets the same 400 although the contact exists by now.
    contacts = 'missing';
    const k = key();
    const body = { contact_id: 'ct_later' };
    const refused = await post(Rpc.journeysCreate, { tenant: T, key: k, body });
    expect(refused.err).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ field: 'contact_id' })] });
    contacts = 'exists';
    expect(await post(Rpc.journeysCreate, { tenant: T, key: k, body })).toMatchObject({ replayed: true, err: refused.err });
    expect(await journeysOf(T)).toBe(0);

    // Contacts down: 503, not kept: the retry runs again and succeeds.
    contacts = 'down';
    const k2 = key();
    expect((await post(Rpc.journeysCreate, { tenant: T, key: k2, body })).err?.code).toBe('unavailable');
    contacts = 'exists';
    const ok = await post(Rpc.journeysCreate, { tenant: T, key: k2, body });
    expect(ok.err).toBeUndefined();
    expect(ok.replayed).toBeUndefined();

    // A full journey: 409, not kept.
    const j = JourneyView.parse(ok.response);
    await ds.query(`INSERT INTO conversions (id, journey_id, name, occurred_at) SELECT 'cv_f' || g || '_' || $1, $1, 'x', now() FROM generate_series(1, 100) g`, [j.id]);
    const k3 = key();
    const cv = { name: 'late', occurred_at: '2024-01-01T00:00:00Z' };
    expect((await post(Rpc.journeysAddConversion, { tenant: T, key: k3, params: { id: j.id }, body: cv })).err?.code).toBe('conflict');
    await ds.query(`DELETE FROM conversions WHERE journey_id = $1 AND id LIKE 'cv_f%'`, [j.id]);
    await ds.query(`UPDATE journeys SET conversion_count = 0 WHERE id = $1`, [j.id]);
    const retried = await post(Rpc.journeysAddConversion, { tenant: T, key: k3, params: { id: j.id }, body: cv });
    expect(retried.err).toBeUndefined();
    expect(JourneyView.parse(retried.response).conversions_total).toBe(1);
  });

  it('emptying test data forgets the test mode keys, not the live ones', async () => {
    const T = 'ten_idem_purge';
    const k = key();
    const body = { anonymous_id: 'p' };
    const live = await post(Rpc.journeysCreate, { tenant: T, key: k, body });
    const test = await post(Rpc.journeysCreate, { tenant: T, mode: 'test', key: k, body });
    expect((await h.call(Rpc.journeysPurgeTestData, { ctx: { ...h.ctx(T), environment: 'test' } })).err).toBeUndefined();
    const testAgain = await post(Rpc.journeysCreate, { tenant: T, mode: 'test', key: k, body });
    expect(testAgain.replayed).toBeUndefined();
    expect((testAgain.response as { id: string }).id).not.toBe((test.response as { id: string }).id);
    expect(await post(Rpc.journeysCreate, { tenant: T, key: k, body })).toMatchObject({ replayed: true, response: live.response });
    expect(pageOf(JourneyView).parse((await post(Rpc.journeysList, { tenant: T, mode: 'test', body: undefined })).response).total).toBe(1);
  });
});
