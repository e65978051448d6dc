import { startRpcService, type RpcServiceHarness } from '@keyway/testing';
import { Rpc, type AccountView, type ContactView, type Page } from '@keyway/contracts';
import { getRepositoryToken } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { AppModule } from '../app.module';
import { ContactEntity } from './contact.entity';
import { ContactsEnv, SERVICE } from '../config';

describe('contacts over NATS', () => {
  let h: RpcServiceHarness<unknown>;
  const ctx = (tenant: string) => h.ctx(tenant);
  const call = <T = unknown>(subject: string, data: unknown) => h.call<T>(subject, data);
  const ok = <T>(subject: string, data: unknown) => h.ok<T>(subject, data);
  const createContact = (tenant: string, body: Record<string, unknown>) => ok<ContactView>(Rpc.contactsCreate, { ctx: ctx(tenant), body });
  const createAccount = (tenant: string, name: string) => ok<AccountView>(Rpc.accountsCreate, { ctx: ctx(tenant), body: { name } });
  const list = (tenant: string, query: Record<string, string>) => ok<Page<ContactView>>(Rpc.contactsList, { ctx: ctx(tenant), query });
  const tick = () => new Promise((r) => setTimeout(r, 3));

  beforeAll(async () => {
    h = await startRpcService('contacts', { name: SERVICE, env: ContactsEnv, module: (config) => AppModule.forRoot(config) });
  });
  afterAll(() => h?.close());

  it('creates, lists, and hides one tenant from another', async () => {
    const created = await call(Rpc.contactsCreate, { ctx: ctx('ten_a'), body: { type: 'lead', name: 'Ada', email: 'ada@example.com' } });
    const id = (created.response as { id: string }).id;
    expect(id).toMatch(/^ct_/);
    const listed = await call(Rpc.contactsList, { ctx: ctx('ten_a'), query: {} });
    expect(listed.response).toMatchObject({ total: 1, page: 1, pageSize: 10, hasMore: false });
    expect((await call(Rpc.contactsGet, { ctx: ctx('ten_b'), params: { id } })).err?.code).toBe('not_found');
    const dup = await call(Rpc.contactsCreate, { ctx: ctx('ten_a'), body: { type: 'lead', name: 'Ada', email: 'ada@example.com' } });
    expect(dup.err?.code).toBe('conflict');
  });

  it('answers the GETs of one turn with one query, each still seeing only its own tenant', async () => {
    const mine = await Promise.all(Array.from({ length: 12 }, (_, i) => createContact('ten_batch', { type: 'user', name: `B${i}`, email: `b${i}@batch.test` })));
    const theirs = await createContact('ten_batch_other', { type: 'user', name: 'Other', email: 'other@batch.test' });
    const repo = h.app.get<Repository<ContactEntity>>(getRepositoryToken(ContactEntity));
    const findBy = jest.spyOn(repo, 'findBy');
    try {
      const ids = [...mine.map((c) => c.id), theirs.id, 'ct_doesnotexist000000000'];
      const replies = await Promise.all(ids.map((id) => call<ContactView>(Rpc.contactsGet, { ctx: ctx('ten_batch'), params: { id } })));
      expect(replies.slice(0, 12).map((r) => r.response?.name)).toEqual(mine.map((c) => c.name));
      // Another tenant's contact in the same batch is not found, like an id nobody has.
      expect(replies.slice(12).map((r) => r.err?.code)).toEqual(['not_found', 'not_found']);
      // 14 requests sent at once reach the service in a few socket reads: a few queries, not 14.
      expect(findBy.mock.calls.length).toBeGreaterThanOrEqual(1);
      expect(findBy.mock.calls.length).toBeLessThan(7);
    } finally {
      findBy.mockRestore();
    }
  });

  it('keeps email (case-insensitively) and external_id unique per tenant only', async () => {
    await createContact('ten_u', { type: 'user', name: 'U1', email: 'Same@Example.com', external_id: 'ext-1' });
    const upper = await call(Rpc.contactsCreate, { ctx: ctx('ten_u'), body: { type: 'user', name: 'U2', email: 'same@example.COM' } });
    expect(upper.err?.code).toBe('conflict');
    const ext = await call(Rpc.contactsCreate, { ctx: ctx('ten_u'), body: { type: 'user', name: 'U3', email: 'u3@example.com', external_id: 'ext-1' } });
    expect(ext.err?.code).toBe('conflict');
    // Another tenant may hold the same email and external_id.
    await createContact('ten_u2', { type: 'user', name: 'U1', email: 'same@example.com', external_id: 'ext-1' });
  });

  describe('list filters and pagination', () => {
    const T = 'ten_filters';
    let acme: AccountView;
    let globex: AccountView;
    const byName: Record<string, ContactView> = {};

    beforeAll(async () => {
      acme = await createAccount(T, 'Acme');
      globex = await createAccount(T, 'Globex');
      const people = [
        { type: 'user', name: 'Grace Hopper', email: 'grace@acme.test', account_id: acme.id },
        { type: 'lead', name: 'Alan Turing', email: 'alan@globex.test', account_id: globex.id },
        { type: 'lead', name: 'Ada Lovelace', email: 'ada@acme.test', account_id: acme.id },
        { type: 'partner', name: 'Edsger Dijkstra', email: 'edsger@partners.test' },
        { type: 'user', name: '100% Barbara', email: 'barbara@liskov.test' },
      ];
      for (const p of people) {
        byName[p.name] = await createContact(T, p);
        await tick();
      }
      await createContact('ten_filters_other', { type: 'user', name: 'Grace Elsewhere', email: 'grace@acme.test' });
    });
    const names = (page: Page<ContactView>) => page.data.map((c) => c.name);

    it('lists the tenant newest first', async () => {
      const all = await list(T, {});
      expect(all).toMatchObject({ total: 5, page: 1, pageSize: 10, hasMore: false });
      expect(names(all)).toEqual(['100% Barbara', 'Edsger Dijkstra', 'Ada Lovelace', 'Alan Turing', 'Grace Hopper']);
    });

    it('filters by q on name or email, case-insensitively, with wildcards taken literally', async () => {
      expect(names(await list(T, { q: 'GRACE' }))).toEqual(['Grace Hopper']);
      expect(names(await list(T, { q: 'acme.test' })).sort()).toEqual(['Ada Lovelace', 'Grace Hopper']);
      expect(names(await list(T, { q: '100%' }))).toEqual(['100% Barbara']);
      expect((await list(T, { q: '%' })).total).toBe(1);
      expect((await list(T, { q: '_' })).total).toBe(0);
      expect((await list(T, { q: 'nobody' })).total).toBe(0);
    });

    it('filters by type and by account_id, alone and together', async () => {
      expect(names(await list(T, { type: 'lead' }))).toEqual(['Ada Lovelace', 'Alan Turing']);
      expect(names(await list(T, { account_id: acme.id }))).toEqual(['Ada Lovelace', 'Grace Hopper']);
      expect(names(await list(T, { account_id: acme.id, type: 'lead' }))).toEqual(['Ada Lovelace']);
      expect(names(await list(T, { account_id: globex.id, q: 'ada' }))).toEqual([]);
      // Another tenant's account id matches nothing here, and reveals nothing.
      const theirs = await createAccount('ten_filters_other', 'Theirs');
      expect((await list(T, { account_id: theirs.id })).total).toBe(0);
      const badType = await call(Rpc.contactsList, { ctx: ctx(T), query: { type: 'customer' } });
      expect(badType.err).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ field: 'type' })] });
    });

    it('pages with total and hasMore, and bounds pageSize', async () => {
      const p1 = await list(T, { page: '1', pageSize: '2' });
      const p2 = await list(T, { page: '2', pageSize: '2' });
      const p3 = await list(T, { page: '3', pageSize: '2' });
      expect(p1).toMatchObject({ page: 1, pageSize: 2, total: 5, hasMore: true });
      expect(p2).toMatchObject({ page: 2, pageSize: 2, total: 5, hasMore: true });
      expect(p3).toMatchObject({ page: 3, pageSize: 2, total: 5, hasMore: false });
      expect([...names(p1), ...names(p2), ...names(p3)]).toEqual(names(await list(T, {})));
      const filtered = await list(T, { type: 'lead', pageSize: '1' });
      expect(filtered).toMatchObject({ total: 2, hasMore: true, data: [expect.objectContaining({ name: 'Ada Lovelace' })] });
      expect(await list(T, { page: '4', pageSize: '2' })).toMatchObject({ data: [], total: 5, hasMore: false });
      for (const query of [{ pageSize: '51' }, { pageSize: '0' }, { page: '0' }, { page: 'two' }]) {
        const r = await call(Rpc.contactsList, { ctx: ctx(T), query });
        expect(r.err?.code).toBe('invalid_request');
      }
    });
  });

  it('changes only the given fields on PATCH', async () => {
    const account = await createAccount('ten_patch', 'Initech');
    const c = await createContact('ten_patch', {
      type: 'lead',
      name: 'Peter',
      email: 'peter@initech.test',
      external_id: 'p-1',
      account_id: account.id,
      properties: { plan: 'free' },
    });
    await tick();
    const patched = await ok<ContactView>(Rpc.contactsUpdate, { ctx: ctx('ten_patch'), params: { id: c.id }, body: { type: 'user' } });
    expect(patched).toEqual({ ...c, type: 'user', updated_at: patched.updated_at });
    expect(patched.updated_at > c.updated_at).toBe(true);

    const cleared = await ok<ContactView>(Rpc.contactsUpdate, {
      ctx: ctx('ten_patch'),
      params: { id: c.id },
      body: { external_id: null, account_id: null, properties: { plan: 'pro' } },
    });
    expect(cleared).toMatchObject({ type: 'user', name: 'Peter', email: 'peter@initech.test', external_id: null, account_id: null, properties: { plan: 'pro' } });
    expect(await ok(Rpc.contactsGet, { ctx: ctx('ten_patch'), params: { id: c.id } })).toEqual(cleared);

    const other = await createContact('ten_patch', { type: 'lead', name: 'Milton', email: 'milton@initech.test' });
    const clash = await call(Rpc.contactsUpdate, { ctx: ctx('ten_patch'), params: { id: other.id }, body: { email: 'PETER@initech.test' } });
    expect(clash.err?.code).toBe('conflict');
    const empty = await call(Rpc.contactsUpdate, { ctx: ctx('ten_patch'), params: { id: c.id }, body: {} });
    expect(empty.err?.code).toBe('invalid_request');
    const foreign = await call(Rpc.contactsUpdate, { ctx: ctx('ten_b'), params: { id: c.id }, body: { name: 'Hijacked' } });
    expect(foreign.err?.code).toBe('not_found');
  });

  it('deletes, then answers not_found', async () => {
    const c = await createContact('ten_del', { type: 'lead', name: 'Gone', email: 'gone@example.com' });
    expect((await call(Rpc.contactsDelete, { ctx: ctx('ten_other'), params: { id: c.id } })).err?.code).toBe('not_found');
    const deleted = await call(Rpc.contactsDelete, { ctx: ctx('ten_del'), params: { id: c.id } });
    expect(deleted.err).toBeUndefined();
    expect(deleted.response).toBeNull();
    expect((await call(Rpc.contactsGet, { ctx: ctx('ten_del'), params: { id: c.id } })).err?.code).toBe('not_found');
    expect((await call(Rpc.contactsUpdate, { ctx: ctx('ten_del'), params: { id: c.id }, body: { name: 'Back' } })).err?.code).toBe('not_found');
    expect((await call(Rpc.contactsDelete, { ctx: ctx('ten_del'), params: { id: c.id } })).err?.code).toBe('not_found');
    // The email is free again.
    await createContact('ten_del', { type: 'lead', name: 'Again', email: 'gone@example.com' });
  });

  it('rejects an unknown body field with details, never assigning it', async () => {
    const r = await call(Rpc.contactsCreate, { ctx: ctx('ten_a'), body: { type: 'lead', name: 'Eve', email: 'eve@example.com', role: 'admin' } });
    expect(r.err).toMatchObject({ code: 'invalid_request', error: expect.any(String) });
    expect(r.err?.details).toEqual([expect.objectContaining({ message: expect.stringContaining('role') })]);
    const c = await createContact('ten_a', { type: 'lead', name: 'Eve', email: 'eve@example.com' });
    const u = await call(Rpc.contactsUpdate, { ctx: ctx('ten_a'), params: { id: c.id }, body: { name: 'Eve 2', tenant_id: 'ten_b' } });
    expect(u.err?.code).toBe('invalid_request');
    const bad = await call(Rpc.contactsCreate, { ctx: ctx('ten_a'), body: { type: 'lead', name: 'Eve', email: 'not-an-email' } });
    expect(bad.err).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ field: 'email' })] });
    expect(await ok(Rpc.contactsGet, { ctx: ctx('ten_a'), params: { id: c.id } })).toEqual(c);
  });

  it("rejects a contact that references another tenant's account, on create and on update", async () => {
    const theirs = await createAccount('ten_b', 'Not yours');
    const created = await call(Rpc.contactsCreate, {
      ctx: ctx('ten_a'),
      body: { type: 'lead', name: 'Mallory', email: 'mallory@example.com', account_id: theirs.id },
    });
    expect(created.err).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ field: 'account_id' })] });
    const c = await createContact('ten_a', { type: 'lead', name: 'Mallory', email: 'mallory@example.com' });
    const updated = await call(Rpc.contactsUpdate, { ctx: ctx('ten_a'), params: { id: c.id }, body: { account_id: theirs.id } });
    expect(updated.err).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ field: 'account_id' })] });
    const missing = await call(Rpc.contactsUpdate, { ctx: ctx('ten_a'), params: { id: c.id }, body: { account_id: 'acc_doesnotexist' } });
    expect(missing.err?.code).toBe('invalid_request');
    expect(await ok<ContactView>(Rpc.contactsGet, { ctx: ctx('ten_a'), params: { id: c.id } })).toMatchObject({ account_id: null });
  });

  it('tells another service whether a contact exists, within one tenant only (journeys checks contact_id this way)', async () => {
    const c = await createContact('ten_exists', { type: 'user', name: 'Known', email: 'known@example.com' });
    const exists = (tenant_id: string, id: string) => ok<{ exists: boolean }>(Rpc.contactsExists, { tenant_id, id });
    expect(await exists('ten_exists', c.id)).toEqual({ exists: true });
    expect(await exists('ten_exists_other', c.id)).toEqual({ exists: false });
    expect(await exists('ten_exists', 'ct_madeup00000000000000')).toEqual({ exists: false });
    // Asked together, in one turn: each answer is its own.
    const many = await Promise.all([c.id, 'ct_nobody', c.id].map((id, i) => exists(i === 2 ? 'ten_b' : 'ten_exists', id)));
    expect(many.map((r) => r.exists)).toEqual([true, false, false]);
    for (const bad of [{}, { tenant_id: 'ten_exists' }, { tenant_id: 'ten_exists', id: c.id, extra: 1 }, { tenant_id: 'ten_exists', id: 'x'.repeat(101) }]) {
      expect((await call(Rpc.contactsExists, bad)).err?.code).toBe('invalid_request');
    }
    await ok(Rpc.contactsDelete, { ctx: ctx('ten_exists'), params: { id: c.id } });
    expect(await exists('ten_exists', c.id)).toEqual({ exists: false });
  });
});
