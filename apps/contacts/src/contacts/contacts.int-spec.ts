import { startInfra, type TestInfra } from '@keyway/testing';
import { loadConfig, startService } from '@keyway/runtime';
import { Rpc } from '@keyway/contracts';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { INestApplication } from '@nestjs/common';
import { AppModule } from '../app.module';
import { ContactsEnv, SERVICE } from '../config';

describe('contacts over NATS', () => {
  let infra: TestInfra;
  let app: INestApplication;
  let nc: NatsConnection;
  const ctx = (tenant: string) => ({ tenant_id: tenant, actor: { type: 'key', id: 'key_test' }, request_id: 'req_1', scopes: [] });
  const call = async (subject: string, data: unknown) => {
    const m = await nc.request(subject, JSON.stringify({ pattern: subject, data, id: '1' }), { timeout: 5_000 });
    return m.json<{ response?: unknown; err?: { code: string } }>();
  };

  beforeAll(async () => {
    infra = await startInfra('contacts');
    const config = loadConfig(ContactsEnv, infra.env);
    app = await startService({ name: SERVICE, module: AppModule.forRoot(config), config });
    nc = await connect({ servers: infra.natsUrl });
  });
  afterAll(async () => {
    await nc?.close();
    await app?.close();
    await infra?.stop();
  });

  it('creates, lists, and hides one tenant from another', async () => {
    const created = await call(Rpc.contactsCreate, { ctx: ctx('ten_a'), body: { type: 'lead', name: 'Ada', email: 'ada@example.com' } });
    const id = (created.response as { id: string }).id;
    expect(id).toMatch(/^ct_/);
    const list = await call(Rpc.contactsList, { ctx: ctx('ten_a'), query: {} });
    expect(list.response).toMatchObject({ total: 1, page: 1, pageSize: 10, hasMore: false });
    expect((await call(Rpc.contactsGet, { ctx: ctx('ten_b'), params: { id } })).err?.code).toBe('not_found');
    const dup = await call(Rpc.contactsCreate, { ctx: ctx('ten_a'), body: { type: 'lead', name: 'Ada', email: 'ada@example.com' } });
    expect(dup.err?.code).toBe('conflict');
  });
});
