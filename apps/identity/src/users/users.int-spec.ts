import { Rpc, type CreatedTenant, type UserView } from '@keyway/contracts';
import { startIdentity, type IdentityHarness } from '../../test/identity-harness';

describe('tenant members', () => {
  let h: IdentityHarness;
  let tenant: string;
  let other: string;
  beforeAll(async () => {
    h = await startIdentity('users');
    const mk = async (name: string) => (await h.call<CreatedTenant>(Rpc.tenantsCreate, { ctx: h.ctx(''), body: { name } })).response!.tenant.id;
    tenant = await mk('Acme');
    other = await mk('Other');
  });
  afterAll(() => h.close());

  it('creates, lists, updates and deletes members; the password is never returned', async () => {
    const ctx = h.ctx(tenant);
    const created = await h.call<UserView>(Rpc.usersCreate, { ctx, body: { name: 'Ada', email: 'Ada@Example.com', password: 'correct horse' } });
    expect(created.response).toMatchObject({ name: 'Ada', email: 'ada@example.com', role: 'viewer' });
    expect(JSON.stringify(created.response)).not.toMatch(/password|correct horse|argon/);
    const id = created.response!.id;
    expect(id).toMatch(/^usr_/);

    const [row] = (await h.ds.query(`SELECT password_hash FROM users WHERE id = $1`, [id])) as [{ password_hash: string }];
    expect(row.password_hash.startsWith('$argon2id$')).toBe(true);

    const list = await h.call<{ total: number; data: UserView[] }>(Rpc.usersList, { ctx, query: {} });
    expect(list.response).toMatchObject({ total: 1, page: 1, pageSize: 10, hasMore: false });
    expect(JSON.stringify(list.response)).not.toContain('password');

    const renamed = await h.call<UserView>(Rpc.usersUpdate, { ctx, params: { id }, body: { name: 'Ada L.', password: 'another secret' } });
    expect(renamed.response).toMatchObject({ name: 'Ada L.', email: 'ada@example.com' });
    const [after] = (await h.ds.query(`SELECT password_hash FROM users WHERE id = $1`, [id])) as [{ password_hash: string }];
    expect(after.password_hash).not.toBe(row.password_hash);

    expect((await h.call(Rpc.usersDelete, { ctx, params: { id } })).response).toBeNull();
    expect((await h.call(Rpc.usersGet, { ctx, params: { id } })).err?.code).toBe('not_found');
    expect((await h.call(Rpc.usersDelete, { ctx, params: { id } })).err?.code).toBe('not_found');
  });

  it('pages by cursor (after → next_cursor) over the tenant only; a deep page or a bad cursor is a 400 naming after', async () => {
    const tenantId = (await h.call<CreatedTenant>(Rpc.tenantsCreate, { ctx: h.ctx(''), body: { name: 'Paged' } })).response!.tenant.id;
    const ctx = h.ctx(tenantId);
    const made = await Promise.all(
      Array.from({ length: 5 }, (_, i) => h.call<UserView>(Rpc.usersCreate, { ctx, body: { name: `M${i}`, email: `m${i}@example.com`, password: '12345678' } })),
    );
    const seen: string[] = [];
    let after: string | null = null;
    do {
      const query: Record<string, string> = { pageSize: '2', ...(after === null ? {} : { after }) };
      const r = await h.call<{ data: UserView[]; next_cursor: string | null; hasMore: boolean; total: number }>(Rpc.usersList, { ctx, query });
      expect(r.response).toMatchObject({ total: 5, hasMore: r.response!.next_cursor !== null });
      seen.push(...r.response!.data.map((u) => u.id));
      after = r.response!.next_cursor;
    } while (after !== null);
    expect(seen.sort()).toEqual(made.map((m) => m.response!.id).sort());

    const deep = await h.call(Rpc.usersList, { ctx, query: { page: '201', pageSize: '50' } });
    expect(deep.err).toMatchObject({ code: 'invalid_request', details: [{ field: 'after' }] });
    const bad = await h.call(Rpc.usersList, { ctx, query: { after: 'bm90LWEtY3Vyc29y.AAAAAAAAAAAAAAAA' } });
    expect(bad.err).toMatchObject({ code: 'invalid_request', details: [{ field: 'after' }] });
  });

  it('email is unique within a tenant (any case), free across tenants', async () => {
    const body = { name: 'Grace', email: 'grace@example.com', password: '12345678' };
    expect((await h.call(Rpc.usersCreate, { ctx: h.ctx(tenant), body })).response).toBeDefined();
    expect((await h.call(Rpc.usersCreate, { ctx: h.ctx(tenant), body: { ...body, email: 'GRACE@example.com' } })).err?.code).toBe('conflict');
    expect((await h.call(Rpc.usersCreate, { ctx: h.ctx(other), body })).response).toBeDefined();
  });

  it('refuses a short password, a bad email and unknown fields with invalid_request', async () => {
    const ctx = h.ctx(tenant);
    for (const body of [
      { name: 'x', email: 'x@example.com', password: 'short' },
      { name: 'x', email: 'not-an-email', password: '12345678' },
      { name: 'x', email: 'y@example.com', password: '12345678', admin: true },
      { name: 'x', email: 'z@example.com', password: '12345678', role: 'owner' },
    ]) {
      const r = await h.call<never>(Rpc.usersCreate, { ctx, body });
      expect(r.err?.code).toBe('invalid_request');
      expect(JSON.stringify(r.err)).not.toContain(body.password);
    }
  });

  it("another tenant's member is not_found", async () => {
    const created = await h.call<UserView>(Rpc.usersCreate, { ctx: h.ctx(tenant), body: { name: 'Lin', email: 'lin@example.com', password: '12345678' } });
    const id = created.response!.id;
    const ctx = h.ctx(other);
    expect((await h.call(Rpc.usersGet, { ctx, params: { id } })).err?.code).toBe('not_found');
    expect((await h.call(Rpc.usersUpdate, { ctx, params: { id }, body: { name: 'x' } })).err?.code).toBe('not_found');
    expect((await h.call(Rpc.usersDelete, { ctx, params: { id } })).err?.code).toBe('not_found');
  });

  it('refuses every member write to a test key: members act live, so a test key would step out of test mode through one', async () => {
    const live = h.ctx(tenant);
    const test = { ...live, environment: 'test' as const };
    const member = (await h.call<UserView>(Rpc.usersCreate, { ctx: live, body: { name: 'Tess', email: 'tess@example.com', password: 'long enough', role: 'developer' } })).response!;
    const created = await h.call(Rpc.usersCreate, { ctx: test, body: { name: 'Mallory', email: 'mallory@example.com', password: 'long enough', role: 'admin' } });
    expect(created.err).toMatchObject({ code: 'forbidden' });
    expect((await h.call(Rpc.usersUpdate, { ctx: test, params: { id: member.id }, body: { password: 'taken over' } })).err).toMatchObject({ code: 'forbidden' });
    expect((await h.call(Rpc.usersUpdate, { ctx: test, params: { id: member.id }, body: { name: 'renamed' } })).err).toMatchObject({ code: 'forbidden' });
    expect((await h.call(Rpc.usersDelete, { ctx: test, params: { id: member.id } })).err).toMatchObject({ code: 'forbidden' });
    const rows = (await h.ds.query(`SELECT email FROM users WHERE tenant_id = $1 AND email = 'mallory@example.com'`, [tenant])) as unknown[];
    expect(rows).toHaveLength(0);
    expect((await h.call<UserView>(Rpc.usersGet, { ctx: live, params: { id: member.id } })).response).toMatchObject({ name: 'Tess', role: 'developer' });
  });
});
