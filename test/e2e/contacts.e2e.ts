import type { AccountView, ContactView, CreatedTenant, IssuedKey, IssuedRootKey, Page } from '@keyway/contracts';
import { request, startPlatform, type Platform } from './platform';

const LIMITS = { burst_per_second: 100_000, per_minute: 1_000_000, per_hour: 1_000_000, daily: 1_000_000 };

/**
 * Contacts through the gateway as a customer's backend calls it: a test key and a live key of one
 * tenant never see each other's contacts or accounts, and 100 concurrent creates of one email
 * give exactly one 201.
 */
describe('contacts and accounts through the gateway', () => {
  let p: Platform;
  let live: string;
  let test: string;
  const call = <T = Record<string, unknown>>(token: string, method: string, path: string, body?: unknown) => request<T>(p.url, method, path, { token, ...(body !== undefined ? { body } : {}) });

  beforeAll(async () => {
    p = await startPlatform('contactsgw');
    const admin = <T>(path: string, body: unknown) => request<T>(p.url, 'POST', path, { token: p.adminToken, body });
    const t = await admin<CreatedTenant>('/admin/v1/tenants', { name: 'Contacts', rate_limit_ceiling: LIMITS });
    const testRoot = await admin<IssuedRootKey>(`/admin/v1/tenants/${t.body.tenant.id}/root-key`, { environment: 'test' });
    // Root keys run under the default limits (100 a minute): keys with room for the race.
    const key = async (root: string) => (await call<IssuedKey>(root, 'POST', '/v1/keys', { name: 'contacts', scopes: ['contacts:write'], rate_limit: LIMITS })).body.key;
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
});
