import { eventually, ServiceProcess, startRpcService, type RpcServiceHarness } from '@keyway/testing';
import { JourneyView, Rpc, pageOf, type Page } from '@keyway/contracts';
import { AppModule } from '../app.module';
import { JourneysEnv, SERVICE } from '../config';

describe('journeys over NATS', () => {
  let h: RpcServiceHarness<unknown>;
  const ctx = (tenant: string) => h.ctx(tenant);
  const call = <T = unknown>(subject: string, data: unknown) => h.call<T>(subject, data);
  /** Every successful answer must match the published contract, not just the fields a test looks at. */
  const ok = async (subject: string, data: unknown): Promise<JourneyView> => {
    const r = await call<JourneyView>(subject, data);
    if (r.err) throw new Error(`${subject}: ${JSON.stringify(r.err)}`);
    return JourneyView.parse(r.response);
  };
  const list = async (tenant: string, query: Record<string, string>): Promise<Page<JourneyView>> => {
    const r = await call(Rpc.journeysList, { ctx: ctx(tenant), query });
    if (r.err) throw new Error(JSON.stringify(r.err));
    return pageOf(JourneyView).parse(r.response);
  };
  const create = (tenant: string, body: Record<string, unknown>) => ok(Rpc.journeysCreate, { ctx: ctx(tenant), body });
  const addTouchpoint = (tenant: string, id: string, body: Record<string, unknown>) =>
    ok(Rpc.journeysAddTouchpoint, { ctx: ctx(tenant), params: { id }, body });
  const addConversion = (tenant: string, id: string, body: Record<string, unknown>) =>
    ok(Rpc.journeysAddConversion, { ctx: ctx(tenant), params: { id }, body });
  const get = (tenant: string, id: string) => ok(Rpc.journeysGet, { ctx: ctx(tenant), params: { id } });
  const tick = () => new Promise((r) => setTimeout(r, 3));

  /**
   * The real contacts service on this file's NATS (journeys asks it about contact_ids), as its own
   * process from its build, as it runs beside journeys in production: journeys may not import
   * another app's code, not even in a test.
   */
  let contacts: ServiceProcess | undefined;
  let people = 0;
  /** A real contact of the tenant, made through the contacts service. */
  const contact = async (tenant: string): Promise<string> =>
    (await h.ok<{ id: string }>(Rpc.contactsCreate, { ctx: ctx(tenant), body: { type: 'user', name: 'Visitor', email: `v${++people}@example.com` } })).id;

  beforeAll(async () => {
    h = await startRpcService('journeys', { name: SERVICE, env: JourneysEnv, module: (config) => AppModule.forRoot(config) });
    contacts = new ServiceProcess('contacts', h.infra.env);
    await contacts.start();
  });
  afterAll(async () => {
    await contacts?.kill('SIGTERM');
    await h?.close();
  });

  it('creates an empty anonymous journey', async () => {
    const j = await create('ten_a', { anonymous_id: 'anon-1' });
    expect(j.id).toMatch(/^jr_[0-9a-z]+$/);
    expect(j).toMatchObject({ contact_id: null, anonymous_id: 'anon-1', touchpoints: [], conversions: [], first_touch: null, last_touch: null });
    expect(await get('ten_a', j.id)).toEqual(j);
  });

  it('answers touchpoints in time order, whatever order they arrive in, with first and last touch', async () => {
    const j = await create('ten_a', {
      contact_id: await contact('ten_a'),
      touchpoints: [
        { type: 'form_submit', occurred_at: '2024-05-01T12:00:00Z', url: 'https://x.test/signup' },
        { type: 'campaign', occurred_at: '2024-05-01T09:00:00Z', source: 'newsletter', medium: 'email', campaign: 'spring' },
        { type: 'page_view', occurred_at: '2024-05-01T10:30:00+02:00', properties: { ref: 'blog' } },
      ],
    });
    expect(j.touchpoints.map((t) => t.type)).toEqual(['page_view', 'campaign', 'form_submit']);
    // Every field is answered; one that was not given is null.
    expect(j.touchpoints[0]).toEqual({
      id: expect.stringMatching(/^tp_/),
      type: 'page_view',
      occurred_at: '2024-05-01T08:30:00.000Z',
      url: null,
      source: null,
      medium: null,
      campaign: null,
      properties: { ref: 'blog' },
    });
    expect(j.touchpoints[1]).toMatchObject({ source: 'newsletter', medium: 'email', campaign: 'spring', url: null, properties: null });
    // first_touch and last_touch are the attribution of the earliest and the latest touchpoint.
    expect(j.first_touch).toEqual({ type: 'page_view', source: null, medium: null, campaign: null, url: null, occurred_at: '2024-05-01T08:30:00.000Z' });
    expect(j.last_touch).toEqual({ type: 'form_submit', source: null, medium: null, campaign: null, url: 'https://x.test/signup', occurred_at: '2024-05-01T12:00:00.000Z' });

    // Earlier than everything so far: it becomes the first touch, and is answered first.
    const earlier = await addTouchpoint('ten_a', j.id, { type: 'custom', occurred_at: '2024-04-30T23:59:59.500Z' });
    expect(earlier.touchpoints.map((t) => t.type)).toEqual(['custom', 'page_view', 'campaign', 'form_submit']);
    expect(earlier).toMatchObject({ first_touch: { type: 'custom', occurred_at: '2024-04-30T23:59:59.500Z' }, last_touch: j.last_touch });
    // The POST answers the whole journey, the same as a GET.
    expect(await get('ten_a', j.id)).toEqual(earlier);

    const later = await addTouchpoint('ten_a', j.id, { type: 'page_view', occurred_at: '2024-06-01T00:00:00Z', url: 'https://x.test/pricing' });
    expect(later.last_touch).toEqual({ type: 'page_view', source: null, medium: null, campaign: null, url: 'https://x.test/pricing', occurred_at: '2024-06-01T00:00:00.000Z' });
    // A touchpoint sent with null fields is one sent without them.
    const nulls = await addTouchpoint('ten_a', j.id, { type: 'campaign', occurred_at: '2024-06-02T00:00:00Z', url: null, source: 'ads', medium: null, campaign: null, properties: null });
    expect(nulls.last_touch).toEqual({ type: 'campaign', source: 'ads', medium: null, campaign: null, url: null, occurred_at: '2024-06-02T00:00:00.000Z' });
    expect(later.touchpoints).toHaveLength(5);
  });

  it('keeps arrival order between touchpoints at the same instant', async () => {
    const at = '2024-01-01T00:00:00Z';
    const j = await create('ten_a', { anonymous_id: 'same-instant', touchpoints: ['a', 'b', 'c'].map((s) => ({ type: 'custom', occurred_at: at, source: s })) });
    await addTouchpoint('ten_a', j.id, { type: 'custom', occurred_at: at, source: 'd' });
    expect((await get('ten_a', j.id)).touchpoints.map((t) => t.source)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('records several conversions on one journey, in time order', async () => {
    const j = await create('ten_a', { anonymous_id: 'buyer' });
    await addConversion('ten_a', j.id, { name: 'purchase', occurred_at: '2024-03-02T10:00:00Z', value: 49.5 });
    const both = await addConversion('ten_a', j.id, { name: 'signup', occurred_at: '2024-03-01T10:00:00Z' });
    expect(both.conversions).toEqual([
      { id: expect.stringMatching(/^cv_/), name: 'signup', occurred_at: '2024-03-01T10:00:00.000Z', value: null },
      { id: expect.stringMatching(/^cv_/), name: 'purchase', occurred_at: '2024-03-02T10:00:00.000Z', value: 49.5 },
    ]);
    const third = await addConversion('ten_a', j.id, { name: 'purchase', occurred_at: '2024-03-05T10:00:00Z', value: 0 });
    expect(third.conversions.map((c) => c.value)).toEqual([null, 49.5, 0]);
    // Conversions are not touchpoints: first/last touch are unaffected.
    expect(third).toMatchObject({ touchpoints: [], first_touch: null, last_touch: null });
  });

  it('lists newest first, paginated, filtered by contact_id, within the tenant', async () => {
    const T = 'ten_list';
    const ids: string[] = [];
    const evenId = await contact(T);
    for (let i = 0; i < 5; i++) {
      const body = i % 2 === 0 ? { contact_id: evenId } : { anonymous_id: `anon-${i}` };
      ids.push((await create(T, { ...body, touchpoints: [{ type: 'page_view', occurred_at: `2024-01-0${i + 1}T00:00:00Z` }] })).id);
      await tick();
    }
    const theirs = await contact('ten_list_other');
    await create('ten_list_other', { contact_id: theirs });

    const all = await list(T, {});
    expect(all).toMatchObject({ page: 1, pageSize: 10, total: 5, hasMore: false });
    expect(all.data.map((j) => j.id)).toEqual([...ids].reverse());
    // Each listed journey carries its own touchpoints, not its neighbours'.
    expect(all.data.map((j) => j.first_touch?.occurred_at)).toEqual(['2024-01-05', '2024-01-04', '2024-01-03', '2024-01-02', '2024-01-01'].map((d) => `${d}T00:00:00.000Z`));

    const p1 = await list(T, { page: '1', pageSize: '2' });
    const p3 = await list(T, { page: '3', pageSize: '2' });
    expect(p1).toMatchObject({ total: 5, hasMore: true });
    expect(p3).toMatchObject({ total: 5, hasMore: false });
    expect(p3.data.map((j) => j.id)).toEqual([ids[0]]);

    const even = await list(T, { contact_id: evenId });
    expect(even).toMatchObject({ total: 3, hasMore: false });
    expect(even.data.map((j) => j.id)).toEqual([ids[4], ids[2], ids[0]]);
    expect(await list(T, { contact_id: evenId, pageSize: '2', page: '2' })).toMatchObject({ total: 3, hasMore: false, data: [expect.objectContaining({ id: ids[0] })] });
    expect((await list(T, { contact_id: 'ct_nobody' })).total).toBe(0);
    // Another tenant's contact matches nothing here.
    expect((await list(T, { contact_id: theirs })).total).toBe(0);

    for (const query of [{ pageSize: '51' }, { page: '0' }, { anonymous_id: 'anon-1' }]) {
      expect((await call(Rpc.journeysList, { ctx: ctx(T), query })).err?.code).toBe('invalid_request');
    }
  });

  it('changes only the given fields on update, and never leaves a journey without a visitor', async () => {
    const j = await create('ten_a', { anonymous_id: 'anon-x', touchpoints: [{ type: 'page_view', occurred_at: '2024-01-01T00:00:00Z' }] });
    const known = await contact('ten_a');
    const identified = await ok(Rpc.journeysUpdate, { ctx: ctx('ten_a'), params: { id: j.id }, body: { contact_id: known } });
    expect(identified).toEqual({ ...j, contact_id: known });
    const forgotten = await ok(Rpc.journeysUpdate, { ctx: ctx('ten_a'), params: { id: j.id }, body: { anonymous_id: null } });
    expect(forgotten).toMatchObject({ contact_id: known, anonymous_id: null, touchpoints: j.touchpoints });

    const nobody = await call(Rpc.journeysUpdate, { ctx: ctx('ten_a'), params: { id: j.id }, body: { contact_id: null } });
    expect(nobody.err).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ field: expect.any(String) })] });
    expect(await get('ten_a', j.id)).toEqual(forgotten);

    const empty = await call(Rpc.journeysUpdate, { ctx: ctx('ten_a'), params: { id: j.id }, body: {} });
    expect(empty.err?.code).toBe('invalid_request');
  });

  it('rejects invalid bodies with details', async () => {
    const cases: Array<[string, unknown]> = [
      [Rpc.journeysCreate, {}],
      // A journey needs a visitor: neither null, empty, nor touchpoints alone stand in for one.
      [Rpc.journeysCreate, { contact_id: null }],
      [Rpc.journeysCreate, { anonymous_id: '' }],
      [Rpc.journeysCreate, { contact_id: '', anonymous_id: null }],
      [Rpc.journeysCreate, { touchpoints: [{ type: 'custom', occurred_at: '2024-01-01T00:00:00Z' }] }],
      [Rpc.journeysCreate, { anonymous_id: 'a', channel: 'web' }],
      [Rpc.journeysCreate, { anonymous_id: 'a', touchpoints: [{ type: 'click', occurred_at: '2024-01-01T00:00:00Z' }] }],
      [Rpc.journeysCreate, { anonymous_id: 'a', touchpoints: [{ type: 'custom', occurred_at: 'yesterday' }] }],
    ];
    for (const [subject, body] of cases) {
      const r = await call(subject, { ctx: ctx('ten_a'), body });
      expect(r.err).toMatchObject({ code: 'invalid_request', details: expect.arrayContaining([expect.objectContaining({ field: expect.any(String), message: expect.any(String) })]) });
    }
    const j = await create('ten_a', { anonymous_id: 'strict' });
    const tp = await call(Rpc.journeysAddTouchpoint, { ctx: ctx('ten_a'), params: { id: j.id }, body: { type: 'custom', occurred_at: '2024-01-01T00:00:00Z', weight: 3 } });
    expect(tp.err?.code).toBe('invalid_request');
    const cv = await call(Rpc.journeysAddConversion, { ctx: ctx('ten_a'), params: { id: j.id }, body: { name: 'x', occurred_at: '2024-01-01T00:00:00Z', value: 'ten' } });
    expect(cv.err).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ field: 'value' })] });
    const upd = await call(Rpc.journeysUpdate, { ctx: ctx('ten_a'), params: { id: j.id }, body: { tenant_id: 'ten_b' } });
    expect(upd.err?.code).toBe('invalid_request');
    expect(await get('ten_a', j.id)).toEqual(j);
  });

  it("answers not_found for another tenant's journey on every operation, and changes nothing", async () => {
    const j = await create('ten_a', { anonymous_id: 'private', touchpoints: [{ type: 'page_view', occurred_at: '2024-01-01T00:00:00Z' }] });
    const attempts: Array<[string, Record<string, unknown>]> = [
      [Rpc.journeysGet, {}],
      [Rpc.journeysUpdate, { body: { anonymous_id: 'stolen' } }],
      [Rpc.journeysDelete, {}],
      [Rpc.journeysAddTouchpoint, { body: { type: 'custom', occurred_at: '2024-01-02T00:00:00Z' } }],
      [Rpc.journeysAddConversion, { body: { name: 'fake', occurred_at: '2024-01-02T00:00:00Z' } }],
    ];
    for (const [subject, extra] of attempts) {
      const r = await call(subject, { ctx: ctx('ten_b'), params: { id: j.id }, ...extra });
      expect({ subject, code: r.err?.code }).toEqual({ subject, code: 'not_found' });
    }
    expect(await get('ten_a', j.id)).toEqual(j);
    expect((await list('ten_b', {})).total).toBe(0);
  });

  it('deletes a journey with its touchpoints and conversions, then answers not_found', async () => {
    const j = await create('ten_del', { anonymous_id: 'gone', touchpoints: [{ type: 'page_view', occurred_at: '2024-01-01T00:00:00Z' }] });
    await addConversion('ten_del', j.id, { name: 'signup', occurred_at: '2024-01-01T00:01:00Z' });
    const deleted = await call(Rpc.journeysDelete, { ctx: ctx('ten_del'), params: { id: j.id } });
    expect(deleted.err).toBeUndefined();
    expect(deleted.response).toBeNull();
    for (const [subject, body] of [
      [Rpc.journeysGet, undefined],
      [Rpc.journeysDelete, undefined],
      [Rpc.journeysAddTouchpoint, { type: 'custom', occurred_at: '2024-01-02T00:00:00Z' }],
      [Rpc.journeysAddConversion, { name: 'late', occurred_at: '2024-01-02T00:00:00Z' }],
    ] as const) {
      expect((await call(subject, { ctx: ctx('ten_del'), params: { id: j.id }, ...(body ? { body } : {}) })).err?.code).toBe('not_found');
    }
    expect((await list('ten_del', {})).total).toBe(0);
  });

  describe('contact_id is checked with contacts', () => {
    const T = 'ten_check';
    const invalidContact = { code: 'invalid_request', details: [expect.objectContaining({ field: 'contact_id' })] };

    it("refuses another tenant's contact, a made-up one and a deleted one, on create and on update, saving nothing", async () => {
      const mine = await contact(T);
      const theirs = await contact('ten_check_other');
      const gone = await contact(T);
      await h.ok(Rpc.contactsDelete, { ctx: ctx(T), params: { id: gone } });

      const j = await create(T, { contact_id: mine, touchpoints: [{ type: 'page_view', occurred_at: '2024-01-01T00:00:00Z' }] });
      expect(j.contact_id).toBe(mine);
      for (const bad of [theirs, 'ct_madeup00000000000000', gone, 'x'.repeat(100)]) {
        const created = await call(Rpc.journeysCreate, { ctx: ctx(T), body: { contact_id: bad, anonymous_id: 'also-given' } });
        expect(created.err).toMatchObject(invalidContact);
        const updated = await call(Rpc.journeysUpdate, { ctx: ctx(T), params: { id: j.id }, body: { contact_id: bad } });
        expect(updated.err).toMatchObject(invalidContact);
      }
      expect(await get(T, j.id)).toEqual(j);
      expect((await list(T, {})).total).toBe(1);

      // Another tenant's journey stays not_found, whatever contact_id comes with the attempt.
      expect((await call(Rpc.journeysUpdate, { ctx: ctx('ten_check_other'), params: { id: j.id }, body: { contact_id: theirs } })).err?.code).toBe('not_found');
      expect((await call(Rpc.journeysUpdate, { ctx: ctx('ten_check_other'), params: { id: j.id }, body: { contact_id: 'ct_madeup00000000000000' } })).err?.code).toBe('not_found');

      // Linking a known contact later, and unlinking, still work.
      const anon = await create(T, { anonymous_id: 'later' });
      expect(await ok(Rpc.journeysUpdate, { ctx: ctx(T), params: { id: anon.id }, body: { contact_id: mine } })).toMatchObject({ contact_id: mine });
      expect(await ok(Rpc.journeysUpdate, { ctx: ctx(T), params: { id: anon.id }, body: { contact_id: null } })).toMatchObject({ contact_id: null });
    });

    it('a contact deleted in contacts loses its journeys through keyway.contacts.deleted, history kept', async () => {
      const gone = await contact(T);
      const j = await create(T, { contact_id: gone, anonymous_id: 'was-known', touchpoints: [{ type: 'page_view', occurred_at: '2024-01-01T00:00:00Z' }] });
      await addConversion(T, j.id, { name: 'purchase', occurred_at: '2024-01-02T00:00:00Z', value: 3 });
      const before = await get(T, j.id);
      await h.ok(Rpc.contactsDelete, { ctx: ctx(T), params: { id: gone } });
      // Contacts' outbox, its relay, KEYWAY_DOMAIN (contacts creates it), journeys' durable consumer.
      await eventually(async () => (await get(T, j.id)).contact_id === null, 60_000);
      expect(await get(T, j.id)).toEqual({ ...before, contact_id: null });
      expect((await list(T, { contact_id: gone })).total).toBe(0);
    });

    // Last in the file: it stops the contacts service.
    it('answers unavailable when contacts is down, silent or broken, and saves nothing; anonymous journeys do not need it', async () => {
      const mine = await contact(T);
      const j = await create(T, { anonymous_id: 'waiting' });
      const before = (await list(T, {})).total;
      const attempts = () => [
        call(Rpc.journeysCreate, { ctx: ctx(T), body: { contact_id: mine } }),
        call(Rpc.journeysUpdate, { ctx: ctx(T), params: { id: j.id }, body: { contact_id: mine } }),
      ];

      await contacts!.kill('SIGTERM');
      contacts = undefined;
      for (const r of await Promise.all(attempts())) expect(r.err).toMatchObject({ code: 'unavailable' });

      // Something answers the subject, but not as contacts should; then nothing answers in time.
      for (const reply of [JSON.stringify({ err: { error: 'boom', code: 'internal' }, isDisposed: true }), '{"response":{"exists":"yes"}}', 'not json', undefined]) {
        const sub = h.nc.subscribe(Rpc.contactsExists, {
          callback: (_e, msg) => {
            if (reply !== undefined) msg.respond(reply);
          },
        });
        await h.nc.flush();
        try {
          for (const r of await Promise.all(attempts())) expect({ reply, err: r.err?.code }).toEqual({ reply, err: 'unavailable' });
        } finally {
          sub.unsubscribe();
        }
      }
      expect((await list(T, {})).total).toBe(before);
      expect((await get(T, j.id)).contact_id).toBeNull();
      expect((await create(T, { anonymous_id: 'no-contacts-needed' })).contact_id).toBeNull();
    });
  });
});
