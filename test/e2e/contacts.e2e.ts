import type { AccountView, ContactBatchResult, ContactView, CreatedTenant, IssuedKey, IssuedRootKey, Page } from '@keyway/contracts';
import { request, startPlatform, type Platform } from './platform';

const LIMITS = { burst_per_second: 100_000, per_minute: 1_000_000, per_hour: 1_000_000, daily: 1_000_000 };

/**
 * Contacts through the gateway as a customer's backend calls it: a test key and a live key of one
 * tenant never see each other's contacts or accounts, 100 concurrent creates of one email give
 * exactly one 201, upserts answer 201 then 200, a batch answers each item in order with a bad one
 * failing alone, and the test-data purge empties test data only.
 */
describe('contacts and accounts through the gateway', () => {
  let p: Platform;
  let live: string;
  let test: string;
  const call = <T = Record<string, unknown>>(token: string, method: string, path: string, body?: unknown) => request<T>(p.url, method, path, { token, ...(body !== undefined ? { body } : {}) });

  beforeAll(async () => {
    p = await startPlatform('contactsgw');
    const admin = <T>(path: string, body: unknown) => request<T>(p.adminUrl, 'POST', path, { token: p.adminToken, body });
    const t = await admin<CreatedTenant>('/admin/v1/tenants', { name: 'Contacts', rate_limit_ceiling: LIMITS });
    const testRoot = await admin<IssuedRootKey>(`/admin/v1/tenants/${t.body.tenant.id}/root-key`, { environment: 'test' });
    // Root keys run under the default limits (100 a minute): keys with room for the race.
    const key = async (root: string) => (await call<IssuedKey>(root, 'POST', '/v1/keys', { name: 'contacts', scopes: ['contacts:write', 'journeys:write'], rate_limit: LIMITS })).body.key!;
    live = await key(t.body.root_key.key);
    test = await key(testRoot.body.root_key.key);
  }, 180_000);
  afterAll(() => p?.stop());

  it("a test key's contacts and accounts are 404 to a live key and the reverse; lists never mix", async () => {
    const made: Record<'live' | 'test', { contact: ContactView; account: AccountView }> = {} as never;
    for (const [mode, token] of [['live', live], ['test', test]] as const) {
      const account = (await call<AccountView>(token, 'POST', '/v1/accounts', { name: `${mode} Co` })).body;
      const contact = await call<ContactView>(token, 'POST', '/v1/contacts', { type: 'user', name: mode, email: 'same@example.com', account_id: account.id });
      expect(contact.status).toBe(201); // the same email in each mode
      made[mode] = { contact: contact.body, account };
    }
    for (const [token, other] of [
      [live, made.test],
      [test, made.live],
    ] as const) {
      for (const [resource, id] of [
        ['contacts', other.contact.id],
        ['accounts', other.account.id],
      ] as const) {
        for (const [method, body] of [['GET'], ['PATCH', { name: 'Hijacked' }], ['DELETE']] as const) {
          const r = await call(token, method, `/v1/${resource}/${id}`, body);
          expect({ resource, method, status: r.status, code: r.body?.code }).toEqual({ resource, method, status: 404, code: 'not_found' });
        }
      }
    }
    for (const [mode, token] of [['live', live], ['test', test]] as const) {
      expect((await call<Page<ContactView>>(token, 'GET', '/v1/contacts')).body.data.map((c) => c.id)).toEqual([made[mode].contact.id]);
      expect((await call<Page<AccountView>>(token, 'GET', '/v1/accounts')).body.data.map((a) => a.id)).toEqual([made[mode].account.id]);
      expect((await call(token, 'GET', `/v1/contacts/${made[mode].contact.id}`)).status).toBe(200);
    }
  });

  it('100 concurrent creates with the same email: exactly one 201, the other 99 are 409 conflict', async () => {
    const replies = await Promise.all(
      Array.from({ length: 100 }, (_, i) => call(live, 'POST', '/v1/contacts', { type: 'lead', name: `Racer ${i}`, email: i % 2 ? 'RACE@example.com' : 'race@example.com' })),
    );
    expect(replies.filter((r) => r.status === 201)).toHaveLength(1);
    const refused = replies.filter((r) => r.status === 409);
    expect(refused).toHaveLength(99);
    for (const r of refused) expect(r.body).toMatchObject({ code: 'conflict', error: expect.any(String) });
    const listed = await call<Page<ContactView>>(live, 'GET', '/v1/contacts?q=race%40example.com');
    expect(listed.body.total).toBe(1);
  });

  it('PUT by external id: 201 created, then 200 replaced; a batch answers each item in order, a bad one failing alone', async () => {
    const put = (body: unknown) => call<ContactView>(live, 'PUT', '/v1/contacts/by-external-id/sdk-user-1', body);
    const created = await put({ type: 'user', name: 'Grace', email: 'grace@example.com', properties: { plan: 'pro' } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ external_id: 'sdk-user-1', name: 'Grace', properties: { plan: 'pro' } });
    expect(created.body).not.toHaveProperty('status');
    const replaced = await put({ type: 'lead', name: 'Grace H.', email: 'grace@example.com' });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({ id: created.body.id, name: 'Grace H.', properties: {} });
    expect((await put({ type: 'lead', name: 'Grace H.' })).status).toBe(400);
    const account = await call<AccountView>(live, 'PUT', '/v1/accounts/by-external-id/org-1', { name: 'Navy' });
    expect(account.status).toBe(201);
    expect((await call(live, 'PUT', '/v1/accounts/by-external-id/org-1', { name: 'Navy', domain: 'navy.test' })).status).toBe(200);
    // The other mode has its own external ids.
    expect((await call(test, 'PUT', '/v1/contacts/by-external-id/sdk-user-1', { type: 'user', name: 'Grace', email: 'grace@example.com' })).status).toBe(201);

    const batch = await call<ContactBatchResult>(live, 'POST', '/v1/contacts/batch', {
      items: [
        { external_id: 'sdk-user-2', type: 'user', name: 'Alan', email: 'alan@example.com', account_id: account.body.id },
        { external_id: 'sdk-user-3', type: 'user', name: 'Bad', email: 'not an email' },
        { external_id: 'sdk-user-4', type: 'user', name: 'Taken', email: 'GRACE@example.com' },
        { external_id: 'sdk-user-1', type: 'user', name: 'Grace', email: 'grace@example.com' },
      ],
    });
    expect(batch.status).toBe(200);
    expect(batch.body.results.map((r) => r.status)).toEqual([201, 400, 409, 200]);
    expect(batch.body.results[1]!.error).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ field: 'email' })] });
    expect(batch.body.results[2]!.error).toMatchObject({ code: 'conflict' });
    expect(batch.body.results[3]!.id).toBe(created.body.id);
    expect((await call(live, 'GET', `/v1/contacts/${batch.body.results[0]!.id}`)).body).toMatchObject({ name: 'Alan', account_id: account.body.id });
    expect((await call(live, 'POST', '/v1/contacts/batch', { items: [] })).status).toBe(400);
  });

  it('DELETE /v1/test-data: a live key is refused; a test key empties the test contacts and accounts, twice alike, and live data stays', async () => {
    const liveBefore = (await call<Page<ContactView>>(live, 'GET', '/v1/contacts')).body.total;
    expect((await call(live, 'DELETE', '/v1/test-data')).status).toBe(403);
    expect((await call<Page<ContactView>>(test, 'GET', '/v1/contacts')).body.total).toBeGreaterThan(0);
    for (let round = 0; round < 2; round++) expect((await call(test, 'DELETE', '/v1/test-data')).status).toBe(204);
    expect((await call<Page<ContactView>>(test, 'GET', '/v1/contacts')).body).toMatchObject({ data: [], total: 0 });
    expect((await call<Page<AccountView>>(test, 'GET', '/v1/accounts')).body).toMatchObject({ data: [], total: 0 });
    expect((await call<Page<ContactView>>(live, 'GET', '/v1/contacts')).body.total).toBe(liveBefore);
  });

  it('a retried POST with an Idempotency-Key answers the first answer, replayed, and creates nothing more', async () => {
    const post = (path: string, body: unknown, key: string) => request<{ id: string; code?: string }>(p.url, 'POST', path, { token: live, body, headers: { 'idempotency-key': key } });
    const body = { type: 'lead', name: 'Retried', email: 'retried@example.com' };
    const first = await post('/v1/contacts', body, 'contacts-e2e-0001');
    expect(first.status).toBe(201);
    const again = await post('/v1/contacts', body, 'contacts-e2e-0001');
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.id).toBe(first.body.id);
    expect((await post('/v1/contacts', { ...body, name: 'Other' }, 'contacts-e2e-0001')).status).toBe(422);
    expect((await call<Page<ContactView>>(live, 'GET', '/v1/contacts?q=retried%40')).body.total).toBe(1);
    const batch = { items: [{ external_id: 'idem-1', type: 'user', name: 'I', email: 'idem1@example.com' }] };
    const b1 = await post('/v1/contacts/batch', batch, 'contacts-e2e-0002');
    const b2 = await post('/v1/contacts/batch', batch, 'contacts-e2e-0002');
    expect(b2.headers.get('idempotent-replayed')).toBe('true');
    expect(b2.body).toEqual(b1.body);
  });
});
