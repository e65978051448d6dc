import { createHash } from 'node:crypto';
import { Rpc, type AccountView, type ContactBatchResult, type ContactView, type Environment, type Page } from '@keyway/contracts';
import { startRpcService, type RpcServiceHarness } from '@keyway/testing';
import { DataSource } from 'typeorm';
import { AppModule } from './app.module';
import { ContactsEnv, SERVICE } from './config';

/**
 * Every contacts POST is idempotent (DESIGN, Idempotency): the record is kept in contacts' own
 * database, in the same transaction as the resource, per tenant and mode.
 */
describe('contacts: idempotent POSTs', () => {
  let h: RpcServiceHarness<unknown>;
  const hash = (body: unknown) => createHash('sha256').update(JSON.stringify(body)).digest('hex');
  const post = <T>(subject: string, tenant: string, key: string, body: unknown, environment: Environment = 'live') =>
    h.call<T>(subject, { ctx: { ...h.ctx(tenant), environment, idempotency: { key, body_hash: hash(body) } }, body });
  const count = async (tenant: string, subject: string, environment: Environment = 'live') =>
    (await h.ok<Page<unknown>>(subject, { ctx: { ...h.ctx(tenant), environment }, query: {} })).total;
  const outbox = async () => Number(((await h.app.get(DataSource).query(`SELECT count(*) AS n FROM outbox`)) as Array<{ n: string }>)[0]!.n);

  beforeAll(async () => {
    h = await startRpcService('contactidem', { name: SERVICE, env: ContactsEnv, module: (config) => AppModule.forRoot(config) });
  });
  afterAll(() => h?.close());

  it('a retried create answers the first answer, replayed, and creates nothing more (contacts and accounts)', async () => {
    const T = 'ten_idem';
    const body = { type: 'lead', name: 'Once', email: 'once@example.com' };
    const first = await post<ContactView>(Rpc.contactsCreate, T, 'retry-key-1', body);
    expect(first.replayed).toBeUndefined();
    const events = await outbox();
    const again = await post<ContactView>(Rpc.contactsCreate, T, 'retry-key-1', body);
    expect(again).toMatchObject({ response: first.response, replayed: true });
    expect(await count(T, Rpc.contactsList)).toBe(1);
    expect(await outbox()).toBe(events);
    // Another body under the same key: 422, nothing written.
    const other = await post(Rpc.contactsCreate, T, 'retry-key-1', { ...body, name: 'Twice' });
    expect(other.err?.code).toBe('idempotency_mismatch');
    // The key is scoped by mode: the same key in test mode is a new request.
    const inTest = await post<ContactView>(Rpc.contactsCreate, T, 'retry-key-1', body, 'test');
    expect(inTest.response!.id).not.toBe(first.response!.id);
    expect(inTest.replayed).toBeUndefined();

    const account = { name: 'Acme' };
    const a1 = await post<AccountView>(Rpc.accountsCreate, T, 'account-key-1', account);
    const a2 = await post<AccountView>(Rpc.accountsCreate, T, 'account-key-1', account);
    expect(a2).toMatchObject({ response: a1.response, replayed: true });
    expect(await count(T, Rpc.accountsList)).toBe(1);
  });

  it('a refused create is replayed as refused (400); a conflict is not kept, so the retry runs again', async () => {
    const T = 'ten_idem_refused';
    const bad = { type: 'lead', name: 'X', email: 'x@example.com', account_id: 'acc_nobody' };
    const r1 = await post(Rpc.contactsCreate, T, 'refused-key-1', bad);
    expect(r1.err?.code).toBe('invalid_request');
    expect(await post(Rpc.contactsCreate, T, 'refused-key-1', bad)).toMatchObject({ err: r1.err, replayed: true });

    await post(Rpc.contactsCreate, T, 'holder-key-1', { type: 'lead', name: 'Holder', email: 'held@example.com' });
    const clash = { type: 'lead', name: 'Clash', email: 'held@example.com' };
    expect((await post(Rpc.contactsCreate, T, 'clash-key-1', clash)).err?.code).toBe('conflict');
    const holder = (await h.ok<Page<ContactView>>(Rpc.contactsList, { ctx: h.ctx(T), query: {} })).data[0]!;
    await h.ok(Rpc.contactsDelete, { ctx: h.ctx(T), params: { id: holder.id } });
    const retried = await post<ContactView>(Rpc.contactsCreate, T, 'clash-key-1', clash);
    expect(retried.response).toMatchObject({ name: 'Clash' });
  });

  it('50 concurrent identical creates under one key make one contact; each answer is the first, replayed, or 409; a retry afterwards replays', async () => {
    const T = 'ten_idem_race';
    const body = { type: 'user', name: 'Racer', email: 'racer@example.com' };
    const replies = await Promise.all(Array.from({ length: 50 }, () => post<ContactView>(Rpc.contactsCreate, T, 'race-key-0001', body)));
    const created = replies.filter((r) => r.response && !r.replayed);
    expect(created).toHaveLength(1);
    const id = created[0]!.response!.id;
    for (const r of replies) {
      if (r.response) expect(r.response.id).toBe(id);
      else expect(r.err?.code).toBe('conflict');
    }
    expect(await count(T, Rpc.contactsList)).toBe(1);
    expect(await post<ContactView>(Rpc.contactsCreate, T, 'race-key-0001', body)).toMatchObject({ response: { id }, replayed: true });
  });

  it('a retried batch answers the same results and writes nothing more', async () => {
    const T = 'ten_idem_batch';
    const body = {
      items: [
        { external_id: 'b-1', type: 'user', name: 'One', email: 'one@example.com' },
        { external_id: 'b-2', type: 'user', name: 'Two', email: 'bad' },
      ],
    };
    const first = await post<ContactBatchResult>(Rpc.contactsBatch, T, 'batch-key-01', body);
    expect(first.response!.results.map((r) => r.status)).toEqual([201, 400]);
    const events = await outbox();
    const again = await post<ContactBatchResult>(Rpc.contactsBatch, T, 'batch-key-01', body);
    expect(again).toMatchObject({ response: first.response, replayed: true });
    expect(await outbox()).toBe(events);
    // Without a key the same batch runs again: now an update of b-1 with nothing to change.
    const plain = await h.ok<ContactBatchResult>(Rpc.contactsBatch, { ctx: h.ctx(T), body });
    expect(plain.results.map((r) => r.status)).toEqual([200, 400]);
  });

  it('the test-data purge forgets the test records with the test contacts: a retried create makes the contact again, live records stay', async () => {
    const T = 'ten_idem_purge';
    const body = { type: 'lead', name: 'Temp', email: 'temp@example.com' };
    const testFirst = await post<ContactView>(Rpc.contactsCreate, T, 'purge-key-1', body, 'test');
    const liveFirst = await post<ContactView>(Rpc.contactsCreate, T, 'purge-key-1', body, 'live');
    await h.ok(Rpc.contactsPurgeTestData, { ctx: { ...h.ctx(T), environment: 'test' } });
    const testAgain = await post<ContactView>(Rpc.contactsCreate, T, 'purge-key-1', body, 'test');
    expect(testAgain.replayed).toBeUndefined();
    expect(testAgain.response!.id).not.toBe(testFirst.response!.id);
    expect(await count(T, Rpc.contactsList, 'test')).toBe(1);
    expect(await post<ContactView>(Rpc.contactsCreate, T, 'purge-key-1', body, 'live')).toMatchObject({ response: liveFirst.response, replayed: true });
  });
});
