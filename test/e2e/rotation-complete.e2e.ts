import { randomBytes } from 'node:crypto';
import type { CreatedTenant, IssuedKey, IssuedRootKey, KeyView } from '@keyway/contracts';
import { ServiceProcess, startInfra, type TestInfra } from '@keyway/testing';
import { request } from './platform';

/**
 * `POST /v1/keys/{id}/rotate/complete` reaches every gateway like a revoke: identity answers only
 * after each live gateway dropped the ended secrets, so the old secret works right before the call
 * and is refused at both replicas by every request sent after it answered, while the new secret
 * keeps working. And key names, unique per tenant and mode, as a client sees them over HTTP.
 * Identity and two gateways, each a built child process.
 */
describe('rotate/complete at two gateway replicas', () => {
  const adminToken = `kwadm_${randomBytes(24).toString('hex')}`;
  let stack: { infra: TestInfra; procs: ServiceProcess[] } | undefined;
  let gateways: string[] = [];
  let adminUrl = '';
  let root = '';
  let tenantId = '';

  beforeAll(async () => {
    const infra = await startInfra('rotcomplete');
    const procs = [new ServiceProcess('identity', infra.env)];
    stack = { infra, procs };
    await procs[0]!.start(); // identity first: it creates the streams
    const env = { ...infra.env, KEYWAY_ADMIN_TOKEN: adminToken, ...(infra.redisUrl && { REDIS_URL: infra.redisUrl }) };
    for (const id of ['gw_complete_a', 'gw_complete_b']) procs.push(new ServiceProcess('gateway', { ...env, GATEWAY_ID: id }));
    await Promise.all(procs.slice(1).map((g) => g.start()));
    gateways = procs.slice(1).map((g) => g.url);
    adminUrl = procs[1]!.adminUrl;
    const tenant = await request<CreatedTenant>(adminUrl, 'POST', '/admin/v1/tenants', { token: adminToken, body: { name: 'Completes' } });
    expect(tenant.status).toBe(201);
    root = tenant.body.root_key.key;
    tenantId = tenant.body.tenant.id;
  }, 60_000);

  afterAll(async () => {
    for (const p of stack?.procs ?? []) await p.kill('SIGTERM').catch(() => p.kill('SIGKILL'));
    await stack?.infra.stop();
  });

  const whoami = async (gateway: string, key: string) => (await request(gateway, 'GET', '/v1/whoami', { token: key })).status;

  it('the old secret works at both replicas until the call, and gets 401 at both right after it answered; the new one keeps working', async () => {
    for (let round = 0; round < 3; round++) {
      const made = await request<IssuedKey>(gateways[0]!, 'POST', '/v1/keys', { token: root, body: { name: `graceful ${round}`, scopes: [] } });
      expect(made.status).toBe(201);
      const rotated = await request<IssuedKey>(gateways[1]!, 'POST', `/v1/keys/${made.body.id}/rotate`, { token: root, body: { grace_period_seconds: 3600 } });
      expect(rotated.status).toBe(200);
      // Both secrets are cached at both replicas before the grace ends.
      for (const g of gateways) {
        expect(await whoami(g, made.body.key)).toBe(200);
        expect(await whoami(g, rotated.body.key)).toBe(200);
      }
      const done = await request<KeyView>(gateways[round % 2]!, 'POST', `/v1/keys/${made.body.id}/rotate/complete`, { token: root, body: {} });
      expect(done.status).toBe(200);
      expect(done.body).toMatchObject({ id: made.body.id, prefix: rotated.body.prefix, status: 'active', previous_secret_last_used_at: null });
      for (const g of gateways) {
        const old = await request(g, 'GET', '/v1/whoami', { token: made.body.key });
        expect({ gateway: g, status: old.status, code: old.body?.code }).toEqual({ gateway: g, status: 401, code: 'invalid_key' });
        expect(await whoami(g, rotated.body.key)).toBe(200);
      }
      // Again: nothing left to end, the same answer, and the old secret stays refused.
      const again = await request<KeyView>(gateways[1]!, 'POST', `/v1/keys/${made.body.id}/rotate/complete`, { token: root, body: {} });
      expect(again.status).toBe(200);
      expect(again.body.prefix).toBe(rotated.body.prefix);
    }
  }, 60_000);

  it('answers the documented errors: unknown key 404, a body with fields 400, a key without keys:write 403', async () => {
    const reader = await request<IssuedKey>(gateways[0]!, 'POST', '/v1/keys', { token: root, body: { name: 'reader', scopes: ['keys:read'] } });
    const missing = await request(gateways[0]!, 'POST', '/v1/keys/key_doesnotexist00000000000/rotate/complete', { token: root, body: {} });
    expect(missing.status).toBe(404);
    const extra = await request(gateways[0]!, 'POST', `/v1/keys/${reader.body.id}/rotate/complete`, { token: root, body: { grace_period_seconds: 0 } });
    expect(extra).toMatchObject({ status: 400, body: { code: 'invalid_request' } });
    const forbidden = await request(gateways[1]!, 'POST', `/v1/keys/${reader.body.id}/rotate/complete`, { token: reader.body.key, body: {} });
    expect(forbidden).toMatchObject({ status: 403, body: { code: 'insufficient_scope', required_scope: 'keys:write' } });
  }, 30_000);

  it('a duplicate key name is 409 conflict in the documented shape at either replica; the other mode and a revoked key do not block it', async () => {
    const create = (g: number, token: string, name: string) => request<IssuedKey>(gateways[g]!, 'POST', '/v1/keys', { token, body: { name, scopes: [] } });
    const first = await create(0, root, 'billing sync');
    expect(first.status).toBe(201);
    const dup = await create(1, root, 'billing sync');
    expect(dup).toMatchObject({ status: 409, body: { code: 'conflict', error: expect.stringContaining('billing sync') } });
    const other = await create(0, root, 'billing sync 2');
    const rename = await request(gateways[1]!, 'PATCH', `/v1/keys/${other.body.id}`, { token: root, body: { name: 'billing sync' } });
    expect(rename).toMatchObject({ status: 409, body: { code: 'conflict' } });
    const testRoot = await request<IssuedRootKey>(adminUrl, 'POST', `/admin/v1/tenants/${tenantId}/root-key`, { token: adminToken, body: { environment: 'test' } });
    expect(testRoot.status).toBe(201);
    expect((await create(1, testRoot.body.root_key.key, 'billing sync')).status).toBe(201);
    expect((await request(gateways[0]!, 'POST', `/v1/keys/${first.body.id}/revoke`, { token: root, body: {} })).status).toBe(200);
    expect((await create(1, root, 'billing sync')).status).toBe(201);
  }, 30_000);
});
