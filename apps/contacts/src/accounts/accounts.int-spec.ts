import { startRpcService, type RpcServiceHarness } from '@keyway/testing';
import { Rpc, type AccountView, type ContactView, type Page } from '@keyway/contracts';
import { AppModule } from '../app.module';
import { ContactsEnv, SERVICE } from '../config';

describe('accounts over NATS', () => {
  let h: RpcServiceHarness<unknown>;
  const ctx = (tenant: string) => h.ctx(tenant);
  const call = <T = unknown>(subject: string, data: unknown) => h.call<T>(subject, data);
  const ok = <T>(subject: string, data: unknown) => h.ok<T>(subject, data);
  const create = (tenant: string, body: Record<string, unknown>) => ok<AccountView>(Rpc.accountsCreate, { ctx: ctx(tenant), body });
  const tick = () => new Promise((r) => setTimeout(r, 3));

  beforeAll(async () => {
    h = await startRpcService('accounts', { name: SERVICE, env: ContactsEnv, module: (config) => AppModule.forRoot(config) });
  });
  afterAll(() => h?.close());

  it('creates an account with defaults and gets it back', async () => {
    const created = await create('ten_a', { name: 'Acme', domain: 'acme.test' });
    expect(created).toMatchObject({ name: 'Acme', domain: 'acme.test', properties: {} });
    expect(created.id).toMatch(/^acc_[0-9a-z]+$/);
    expect(created.created_at).toBe(created.updated_at);
    expect(await ok(Rpc.accountsGet, { ctx: ctx('ten_a'), params: { id: created.id } })).toEqual(created);

    const bare = await create('ten_a', { name: 'No domain' });
    expect(bare.domain).toBeNull();
  });

  it('lists newest first, paginated, within the tenant only', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await create('ten_list', { name: `Co ${i}` })).id);
      await tick();
    }
    await create('ten_other', { name: 'Elsewhere' });

    const p1 = await ok<Page<AccountView>>(Rpc.accountsList, { ctx: ctx('ten_list'), query: { page: '1', pageSize: '2' } });
    expect(p1).toMatchObject({ page: 1, pageSize: 2, total: 5, hasMore: true });
    expect(p1.data.map((a) => a.id)).toEqual([ids[4], ids[3]]);
    const p3 = await ok<Page<AccountView>>(Rpc.accountsList, { ctx: ctx('ten_list'), query: { page: '3', pageSize: '2' } });
    expect(p3).toMatchObject({ page: 3, total: 5, hasMore: false });
    expect(p3.data.map((a) => a.id)).toEqual([ids[0]]);
    const beyond = await ok<Page<AccountView>>(Rpc.accountsList, { ctx: ctx('ten_list'), query: { page: '9' } });
    expect(beyond).toMatchObject({ data: [], total: 5, hasMore: false });

    const tooBig = await call(Rpc.accountsList, { ctx: ctx('ten_list'), query: { pageSize: '51' } });
    expect(tooBig.err).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ field: 'pageSize' })] });
    const unknown = await call(Rpc.accountsList, { ctx: ctx('ten_list'), query: { sort: 'name' } });
    expect(unknown.err?.code).toBe('invalid_request');
  });

  it('changes only the given fields on update', async () => {
    const a = await create('ten_a', { name: 'Before', domain: 'before.test', properties: { tier: 'gold' } });
    await tick();
    const renamed = await ok<AccountView>(Rpc.accountsUpdate, { ctx: ctx('ten_a'), params: { id: a.id }, body: { name: 'After' } });
    expect(renamed).toMatchObject({ id: a.id, name: 'After', domain: 'before.test', properties: { tier: 'gold' }, created_at: a.created_at });
    expect(renamed.updated_at > a.updated_at).toBe(true);

    const cleared = await ok<AccountView>(Rpc.accountsUpdate, { ctx: ctx('ten_a'), params: { id: a.id }, body: { domain: null } });
    expect(cleared).toMatchObject({ name: 'After', domain: null, properties: { tier: 'gold' } });
    expect(await ok(Rpc.accountsGet, { ctx: ctx('ten_a'), params: { id: a.id } })).toEqual(cleared);
  });

  it('rejects unknown and empty bodies with details', async () => {
    const bad = await call(Rpc.accountsCreate, { ctx: ctx('ten_a'), body: { name: 'X', plan: 'pro' } });
    expect(bad.err).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ message: expect.stringContaining('plan') })] });
    const a = await create('ten_a', { name: 'Y' });
    const empty = await call(Rpc.accountsUpdate, { ctx: ctx('ten_a'), params: { id: a.id }, body: {} });
    expect(empty.err?.code).toBe('invalid_request');
    const missing = await call(Rpc.accountsCreate, { ctx: ctx('ten_a'), body: {} });
    expect(missing.err).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ field: 'name' })] });
  });

  it("answers not_found for another tenant's account, and leaves it untouched", async () => {
    const a = await create('ten_a', { name: 'Private' });
    for (const [subject, extra] of [
      [Rpc.accountsGet, {}],
      [Rpc.accountsUpdate, { body: { name: 'Hijacked' } }],
      [Rpc.accountsDelete, {}],
    ] as const) {
      const r = await call(subject, { ctx: ctx('ten_b'), params: { id: a.id }, ...extra });
      expect(r.err?.code).toBe('not_found');
    }
    expect(await ok<AccountView>(Rpc.accountsGet, { ctx: ctx('ten_a'), params: { id: a.id } })).toMatchObject({ name: 'Private' });
  });

  it('deletes, then answers not_found; contacts of the account keep existing without it', async () => {
    const a = await create('ten_a', { name: 'Doomed' });
    const c = await ok<ContactView>(Rpc.contactsCreate, {
      ctx: ctx('ten_a'),
      body: { type: 'user', name: 'Bo', email: 'bo@doomed.test', account_id: a.id },
    });
    const deleted = await call(Rpc.accountsDelete, { ctx: ctx('ten_a'), params: { id: a.id } });
    expect(deleted.err).toBeUndefined();
    expect(deleted.response).toBeNull();
    expect((await call(Rpc.accountsGet, { ctx: ctx('ten_a'), params: { id: a.id } })).err?.code).toBe('not_found');
    expect((await call(Rpc.accountsDelete, { ctx: ctx('ten_a'), params: { id: a.id } })).err?.code).toBe('not_found');
    expect(await ok<ContactView>(Rpc.contactsGet, { ctx: ctx('ten_a'), params: { id: c.id } })).toMatchObject({ account_id: null });
  });
});
