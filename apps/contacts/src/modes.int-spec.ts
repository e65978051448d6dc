import { Rpc, type AccountView, type ContactView, type Environment, type Page } from '@keyway/contracts';
import { startRpcService, type RpcServiceHarness } from '@keyway/testing';
import { AppModule } from './app.module';
import { ContactsEnv, SERVICE } from './config';

/**
 * Test mode (DESIGN "Test mode"): a mode sees only its own contacts and accounts; the other
 * mode's ids are not found on every operation, lists never mix, uniqueness is per mode, and the
 * purge empties the test data only.
 */
describe('contacts and accounts: test mode', () => {
  let h: RpcServiceHarness<unknown>;
  const ctx = (tenant: string, environment?: Environment) => ({ ...h.ctx(tenant), ...(environment ? { environment } : {}) });
  const as = (tenant: string, env?: Environment) => ({
    call: <T>(subject: string, rest: Record<string, unknown> = {}) => h.call<T>(subject, { ctx: ctx(tenant, env), ...rest }),
    ok: <T>(subject: string, rest: Record<string, unknown> = {}) => h.ok<T>(subject, { ctx: ctx(tenant, env), ...rest }),
  });

  beforeAll(async () => {
    h = await startRpcService('contactmodes', { name: SERVICE, env: ContactsEnv, module: (config) => AppModule.forRoot(config) });
  });
  afterAll(() => h?.close());

  it("a mode's ids are not found in the other mode, on every operation, and lists never mix", async () => {
    const T = 'ten_modes';
    const live = as(T, 'live');
    const test = as(T, 'test');
    const byDefault = as(T); // no environment in the context: live
    const liveAccount = await live.ok<AccountView>(Rpc.accountsCreate, { body: { name: 'Live Co', external_id: 'co-1' } });
    const testAccount = await test.ok<AccountView>(Rpc.accountsCreate, { body: { name: 'Test Co', external_id: 'co-1' } });
    const liveContact = await live.ok<ContactView>(Rpc.contactsCreate, { body: { type: 'user', name: 'Live', email: 'same@example.com', external_id: 'u-1', account_id: liveAccount.id } });
    const testContact = await test.ok<ContactView>(Rpc.contactsCreate, { body: { type: 'user', name: 'Test', email: 'same@example.com', external_id: 'u-1', account_id: testAccount.id } });

    for (const [mine, theirs, other] of [
      [liveContact, testContact, test],
      [testContact, liveContact, live],
    ] as const) {
      for (const [subject, extra] of [
        [Rpc.contactsGet, {}],
        [Rpc.contactsUpdate, { body: { name: 'Hijacked' } }],
        [Rpc.contactsDelete, {}],
      ] as const) {
        expect((await other.call(subject, { params: { id: mine.id }, ...extra })).err?.code).toBe('not_found');
      }
      expect((await other.ok<ContactView>(Rpc.contactsGet, { params: { id: theirs.id } })).id).toBe(theirs.id);
    }
    for (const [mine, other] of [
      [liveAccount, test],
      [testAccount, live],
    ] as const) {
      for (const [subject, extra] of [
        [Rpc.accountsGet, {}],
        [Rpc.accountsUpdate, { body: { name: 'Hijacked' } }],
        [Rpc.accountsDelete, {}],
      ] as const) {
        expect((await other.call(subject, { params: { id: mine.id }, ...extra })).err?.code).toBe('not_found');
      }
    }
    // A contact cannot link to the other mode's account, on create, update or upsert.
    const cross = await test.call(Rpc.contactsCreate, { body: { type: 'lead', name: 'X', email: 'x@example.com', account_id: liveAccount.id } });
    expect(cross.err).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ field: 'account_id' })] });
    expect((await test.call(Rpc.contactsUpdate, { params: { id: testContact.id }, body: { account_id: liveAccount.id } })).err?.code).toBe('invalid_request');
    const crossUpsert = await test.call(Rpc.contactsUpsert, { params: { external_id: 'u-9' }, body: { type: 'lead', name: 'Y', email: 'y@example.com', account_id: liveAccount.id } });
    expect(crossUpsert.err?.code).toBe('invalid_request');

    const ids = async (who: ReturnType<typeof as>, subject: string, query: Record<string, string> = {}) =>
      (await who.ok<Page<{ id: string }>>(subject, { query })).data.map((r) => r.id);
    expect(await ids(live, Rpc.contactsList)).toEqual([liveContact.id]);
    expect(await ids(byDefault, Rpc.contactsList)).toEqual([liveContact.id]);
    expect(await ids(test, Rpc.contactsList)).toEqual([testContact.id]);
    expect(await ids(test, Rpc.contactsList, { q: 'same@' })).toEqual([testContact.id]);
    expect(await ids(live, Rpc.contactsList, { account_id: testAccount.id })).toEqual([]);
    expect(await ids(live, Rpc.accountsList)).toEqual([liveAccount.id]);
    expect(await ids(test, Rpc.accountsList)).toEqual([testAccount.id]);

    // Journeys asks per mode; without a mode it is live.
    const exists = (id: string, environment?: Environment) => h.ok<{ exists: boolean }>(Rpc.contactsExists, { tenant_id: T, id, ...(environment ? { environment } : {}) });
    expect(await exists(liveContact.id, 'live')).toEqual({ exists: true });
    expect(await exists(liveContact.id, 'test')).toEqual({ exists: false });
    expect(await exists(testContact.id, 'test')).toEqual({ exists: true });
    expect(await exists(testContact.id, 'live')).toEqual({ exists: false });
    expect(await exists(testContact.id)).toEqual({ exists: false });
    expect((await h.call(Rpc.contactsExists, { tenant_id: T, id: testContact.id, environment: 'staging' })).err?.code).toBe('invalid_request');
  });

  it('uniqueness is per tenant and mode: a test contact never blocks (or reveals) a live one', async () => {
    const T = 'ten_unique_modes';
    await as(T, 'test').ok(Rpc.contactsCreate, { body: { type: 'lead', name: 'T', email: 'Taken@example.com', external_id: 'e-1' } });
    await as(T, 'live').ok(Rpc.contactsCreate, { body: { type: 'lead', name: 'L', email: 'taken@example.com', external_id: 'e-1' } });
    const again = await as(T, 'live').call(Rpc.contactsCreate, { body: { type: 'lead', name: 'L2', email: 'TAKEN@example.com' } });
    expect(again.err).toMatchObject({ code: 'conflict', field: 'email' });
    await as(T, 'test').ok(Rpc.accountsUpsert, { params: { external_id: 'a-1' }, body: { name: 'T' } });
    expect(await as(T, 'live').ok(Rpc.accountsUpsert, { params: { external_id: 'a-1' }, body: { name: 'L' } })).toMatchObject({ status: 201 });
  });

  it('the purge empties the tenant test data only, and again changes nothing', async () => {
    const T = 'ten_purge';
    const test = as(T, 'test');
    const live = as(T, 'live');
    const account = await test.ok<AccountView>(Rpc.accountsCreate, { body: { name: 'Test Co' } });
    for (let i = 0; i < 3; i++) await test.ok(Rpc.contactsCreate, { body: { type: 'lead', name: `T${i}`, email: `t${i}@example.com`, account_id: account.id } });
    const kept = await live.ok<ContactView>(Rpc.contactsCreate, { body: { type: 'lead', name: 'Live', email: 't0@example.com' } });
    const keptAccount = await live.ok<AccountView>(Rpc.accountsCreate, { body: { name: 'Live Co' } });
    const otherTenant = await as('ten_purge_other', 'test').ok<ContactView>(Rpc.contactsCreate, { body: { type: 'lead', name: 'O', email: 'o@example.com' } });

    // Only a test caller may purge: a live key (or no mode) is refused, and nothing is deleted.
    expect((await live.call(Rpc.contactsPurgeTestData)).err?.code).toBe('forbidden');
    expect((await as(T).call(Rpc.contactsPurgeTestData)).err?.code).toBe('forbidden');
    expect((await test.ok<Page<ContactView>>(Rpc.contactsList)).total).toBe(3);

    for (let round = 0; round < 2; round++) expect(await test.ok(Rpc.contactsPurgeTestData)).toBeNull();
    expect(await test.ok(Rpc.contactsList)).toMatchObject({ data: [], total: 0 });
    expect(await test.ok(Rpc.accountsList)).toMatchObject({ data: [], total: 0 });
    expect((await live.ok<Page<ContactView>>(Rpc.contactsList)).data.map((c) => c.id)).toEqual([kept.id]);
    expect((await live.ok<Page<AccountView>>(Rpc.accountsList)).data.map((a) => a.id)).toEqual([keptAccount.id]);
    expect((await as('ten_purge_other', 'test').ok<ContactView>(Rpc.contactsGet, { params: { id: otherTenant.id } })).id).toBe(otherTenant.id);
    // The emails are free again in test mode.
    await test.ok(Rpc.contactsCreate, { body: { type: 'lead', name: 'T0', email: 't0@example.com' } });
  });
});
