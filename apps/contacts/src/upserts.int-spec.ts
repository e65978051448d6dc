import { CONTACT_BATCH_MAX, Rpc, type AccountView, type ContactBatchResult, type ContactUpsertReply, type ContactView, type Page } from '@keyway/contracts';
import { startRpcService, type RpcServiceHarness } from '@keyway/testing';
import { AppModule } from './app.module';
import { ContactsEnv, SERVICE } from './config';

/** Upserts by the customer's id, the batch, and creates racing on one email. */
describe('contacts: upserts, batch and races', () => {
  let h: RpcServiceHarness<unknown>;
  const ctx = (tenant: string) => h.ctx(tenant);
  const upsert = (tenant: string, external_id: string, body: Record<string, unknown>) => h.call<ContactUpsertReply>(Rpc.contactsUpsert, { ctx: ctx(tenant), params: { external_id }, body });
  const batch = (tenant: string, items: unknown[]) => h.call<ContactBatchResult>(Rpc.contactsBatch, { ctx: ctx(tenant), body: { items } });
  const tick = () => new Promise((r) => setTimeout(r, 3));

  beforeAll(async () => {
    h = await startRpcService('contactupserts', { name: SERVICE, env: ContactsEnv, module: (config) => AppModule.forRoot(config) });
  });
  afterAll(() => h?.close());

  it('PUT by external id creates (201), then replaces the whole record (200); an unchanged replay writes nothing', async () => {
    const T = 'ten_upsert';
    const account = await h.ok<AccountView>(Rpc.accountsCreate, { ctx: ctx(T), body: { name: 'Acme' } });
    const first = await upsert(T, 'user-42', { type: 'user', name: 'Ada', email: 'ada@example.com', account_id: account.id, properties: { plan: 'pro' } });
    expect(first.response).toMatchObject({ status: 201, body: { external_id: 'user-42', name: 'Ada', account_id: account.id, properties: { plan: 'pro' } } });
    const created = first.response!.body;
    await tick();
    // Fully replaced: what is left out goes back to its default.
    const second = await upsert(T, 'user-42', { type: 'lead', name: 'Ada L.', email: 'ada@example.com' });
    expect(second.response).toEqual({ status: 200, body: { ...created, type: 'lead', name: 'Ada L.', account_id: null, properties: {}, updated_at: expect.any(String) } });
    expect(second.response!.body.updated_at > created.updated_at).toBe(true);
    await tick();
    const replay = await upsert(T, 'user-42', { type: 'lead', name: 'Ada L.', email: 'ada@example.com' });
    expect(replay.response).toEqual(second.response);
    expect(await h.ok(Rpc.contactsGet, { ctx: ctx(T), params: { id: created.id } })).toEqual(second.response!.body);

    // An email held by a contact of another external id: 409, nothing changed.
    await upsert(T, 'user-43', { type: 'user', name: 'Bob', email: 'bob@example.com' });
    const clash = await upsert(T, 'user-42', { type: 'user', name: 'Ada', email: 'BOB@example.com' });
    expect(clash.err).toMatchObject({ code: 'conflict', field: 'email' });
    const clashNew = await upsert(T, 'user-44', { type: 'user', name: 'Eve', email: 'bob@example.com' });
    expect(clashNew.err?.code).toBe('conflict');
    expect((await h.ok<Page<ContactView>>(Rpc.contactsList, { ctx: ctx(T), query: {} })).total).toBe(2);

    // Validation: the path's external id and the body, with details.
    for (const [external_id, body] of [
      ['user-42', { type: 'user', name: 'Ada' }],
      ['user-42', { type: 'user', name: 'Ada', email: 'ada@example.com', external_id: 'other' }],
      ['x'.repeat(201), { type: 'user', name: 'Ada', email: 'ada@example.com' }],
      ['nul\u0000', { type: 'user', name: 'Ada', email: 'ada@example.com' }],
      ['user-42', { type: 'user', name: 'A\u0000da', email: 'ada@example.com' }],
    ] as const) {
      expect((await upsert(T, external_id, body)).err).toMatchObject({ code: 'invalid_request', details: expect.any(Array) });
    }
  });

  it('PUT accounts by external id: 201, then 200, with external_id shown and unique per tenant', async () => {
    const T = 'ten_upsert_acc';
    const put = (external_id: string, body: Record<string, unknown>) => h.call<{ status: number; body: AccountView }>(Rpc.accountsUpsert, { ctx: ctx(T), params: { external_id }, body });
    const a = await put('org-1', { name: 'Initech', domain: 'initech.test', properties: { size: 10 } });
    expect(a.response).toMatchObject({ status: 201, body: { external_id: 'org-1', name: 'Initech', domain: 'initech.test' } });
    const b = await put('org-1', { name: 'Initech Inc' });
    expect(b.response).toMatchObject({ status: 200, body: { id: a.response!.body.id, name: 'Initech Inc', domain: null, properties: {} } });
    const other = await h.ok<AccountView>(Rpc.accountsCreate, { ctx: ctx(T), body: { name: 'Other' } });
    const taken = await h.call(Rpc.accountsUpdate, { ctx: ctx(T), params: { id: other.id }, body: { external_id: 'org-1' } });
    expect(taken.err).toMatchObject({ code: 'conflict', field: 'external_id' });
  });

  it('concurrent PUTs of one new external id make one contact: one 201, the rest 200', async () => {
    const T = 'ten_upsert_race';
    const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => upsert(T, 'racer', { type: 'user', name: `R${i % 2}`, email: 'racer@example.com' })));
    expect(replies.filter((r) => r.err)).toEqual([]);
    expect(replies.filter((r) => r.response?.status === 201)).toHaveLength(1);
    expect(new Set(replies.map((r) => r.response?.body.id)).size).toBe(1);
    expect((await h.ok<Page<ContactView>>(Rpc.contactsList, { ctx: ctx(T), query: {} })).total).toBe(1);
  });

  it('100 concurrent creates with the same email: exactly one is created, the other 99 are conflicts', async () => {
    const T = 'ten_email_race';
    const replies = await Promise.all(
      Array.from({ length: 100 }, (_, i) => h.call<ContactView>(Rpc.contactsCreate, { ctx: ctx(T), body: { type: 'lead', name: `N${i}`, email: i % 2 ? 'Race@Example.com' : 'race@example.com' } })),
    );
    expect(replies.filter((r) => r.response)).toHaveLength(1);
    expect(replies.filter((r) => r.err?.code === 'conflict')).toHaveLength(99);
    expect((await h.ok<Page<ContactView>>(Rpc.contactsList, { ctx: ctx(T), query: {} })).total).toBe(1);
  });

  it('batch: each item answered in order; a bad item in the middle fails alone, the others are saved', async () => {
    const T = 'ten_batch_upsert';
    await upsert(T, 'held', { type: 'user', name: 'Holder', email: 'held@example.com' });
    const items = [
      { external_id: 'b-1', type: 'user', name: 'One', email: 'one@example.com' },
      { external_id: 'b-2', type: 'user', name: 'Two', email: 'not-an-email' },
      { external_id: 'b-3', type: 'user', name: 'Three', email: 'held@example.com' },
      { external_id: 'b-4', type: 'lead', name: 'Four', email: 'four@example.com', account_id: 'acc_nobody' },
      'not an object',
      { external_id: 'held', type: 'partner', name: 'Holder', email: 'held@example.com' },
      { external_id: 'b-1', type: 'lead', name: 'One again', email: 'one@example.com' },
      { external_id: 'b-5', type: 'user', name: 'Five', email: 'five@example.com', role: 'admin' },
    ];
    const r = await batch(T, items);
    expect(r.err).toBeUndefined();
    const results = r.response!.results;
    expect(results.map((x) => x.status)).toEqual([201, 400, 409, 400, 400, 200, 200, 400]);
    expect(results[1]!.error).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ field: 'email' })] });
    expect(results[2]!.error).toMatchObject({ code: 'conflict', field: 'email', error: expect.any(String) });
    expect(results[3]!.error).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ field: 'account_id' })] });
    expect(results[7]!.error).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ message: expect.stringContaining('role') })] });
    expect(results[0]!.id).toMatch(/^ct_/);
    expect(results[6]!.id).toBe(results[0]!.id);
    for (const i of [1, 2, 3, 4, 7]) expect(results[i]!.id).toBeUndefined();
    const listed = await h.ok<Page<ContactView>>(Rpc.contactsList, { ctx: ctx(T), query: {} });
    expect(listed.data.map((c) => [c.external_id, c.type, c.name]).sort()).toEqual([
      ['b-1', 'lead', 'One again'],
      ['held', 'partner', 'Holder'],
    ]);
  });

  it('batch: 1 to 100 items; more, none or not a list is refused whole', async () => {
    const T = 'ten_batch_sizes';
    const item = (i: number) => ({ external_id: `s-${i}`, type: 'user', name: `S${i}`, email: `s${i}@example.com` });
    const full = await batch(T, Array.from({ length: CONTACT_BATCH_MAX }, (_, i) => item(i)));
    expect(full.response!.results.filter((x) => x.status === 201)).toHaveLength(CONTACT_BATCH_MAX);
    for (const items of [Array.from({ length: CONTACT_BATCH_MAX + 1 }, (_, i) => item(i)), [], 'x']) {
      expect((await batch(T, items as unknown[])).err).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ field: 'items' })] });
    }
    expect((await h.call(Rpc.contactsBatch, { ctx: ctx(T), body: { items: [item(1)], extra: true } })).err?.code).toBe('invalid_request');
  });

  it('concurrent batches over the same external ids in opposite orders all succeed', async () => {
    const T = 'ten_batch_race';
    const items = Array.from({ length: 40 }, (_, i) => ({ external_id: `r-${i}`, type: 'user', name: `R${i}`, email: `r${i}@example.com` }));
    const replies = await Promise.all(Array.from({ length: 6 }, (_, k) => batch(T, k % 2 ? items : [...items].reverse())));
    for (const r of replies) {
      expect(r.err).toBeUndefined();
      expect(r.response!.results.every((x) => x.status === 200 || x.status === 201)).toBe(true);
    }
    expect((await h.ok<Page<ContactView>>(Rpc.contactsList, { ctx: ctx(T), query: {} })).total).toBe(40);
  });
});
