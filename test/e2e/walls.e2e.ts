import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { CreatedTenant, IssuedKey } from '@keyway/contracts';
import { eventually, REPO_ROOT, ServiceProcess, startInfra, startLockedNats, type LockedNats, type TestInfra } from '@keyway/testing';
import { request } from './platform';

/**
 * The whole platform behind its walls (issue 13, DESIGN Operations): nats-server runs the
 * checked-in infra/nats/auth.conf, each service connects as its own NATS user and its own Postgres
 * role, and the flows that cross the bus still work: key creation to the audit trail, contacts,
 * journeys asking contacts whether a contact exists, a revoke invalidating every gateway. The
 * server logs every permission violation: a permission too narrow for a real flow fails here,
 * rather than silently in production.
 */
const SERVICES = ['identity', 'contacts', 'journeys', 'audit-log'] as const;

describe('the platform behind its walls (own NATS user and Postgres role per service)', () => {
  let infra: TestInfra;
  let nats: LockedNats;
  let gateway: ServiceProcess;
  const all: ServiceProcess[] = [];
  const adminToken = `kwadm_${randomBytes(24).toString('hex')}`;

  beforeAll(async () => {
    infra = await startInfra('walls');
    nats = await startLockedNats(readFileSync(join(REPO_ROOT, 'infra/nats/auth.conf'), 'utf8'));
    const envOf = async (app: string) => ({
      ...infra.env,
      // The streams by their production names: the permissions name them.
      KEYWAY_STREAM: 'KEYWAY',
      ...nats.env(app),
      ...(app === 'gateway' ? {} : { DATABASE_URL: await infra.provisionRole(app) }),
    });
    const services = await Promise.all(SERVICES.map(async (app) => new ServiceProcess(app, await envOf(app))));
    gateway = new ServiceProcess('gateway', { ...(await envOf('gateway')), KEYWAY_ADMIN_TOKEN: adminToken });
    all.push(...services, gateway);
    try {
      await services[0]!.start(); // identity first: it makes the streams
      await Promise.all([...services.slice(1), gateway].map((s) => s.start()));
    } catch (err) {
      // A refused permission shows in the server's log, not always in the service's.
      throw new Error(`${String(err)}\nnats-server log:\n${nats.nats.log().slice(-3_000)}`);
    }
  }, 120_000);
  afterAll(async () => {
    await Promise.all(all.map((s) => s.kill('SIGTERM')));
    await nats?.stop();
    await infra?.stop();
  });

  it('creates a key into the audit trail, serves contacts and journeys (journeys → contacts), and a revoke reaches the gateway', async () => {
    const tenant = await request<CreatedTenant>(gateway.adminUrl, 'POST', '/admin/v1/tenants', { token: adminToken, body: { name: 'Walled' } });
    expect(tenant.status).toBe(201);
    const root = tenant.body.root_key.key;

    const created = await request<IssuedKey>(gateway.url, 'POST', '/v1/keys', { token: root, body: { name: 'app', scopes: ['contacts:read', 'contacts:write', 'journeys:read', 'journeys:write'] } });
    expect(created.status).toBe(201);
    const key = created.body.key;

    const contact = await request<{ id: string }>(gateway.url, 'POST', '/v1/contacts', { token: key, body: { type: 'lead', name: 'Ada', email: 'ada@example.com' } });
    expect(contact.status).toBe(201);
    expect((await request(gateway.url, 'GET', `/v1/contacts/${contact.body.id}`, { token: key })).status).toBe(200);

    const journey = await request<{ id: string }>(gateway.url, 'POST', '/v1/journeys', { token: key, body: { contact_id: contact.body.id } });
    expect(journey.status).toBe(201);
    // Another tenant's contact: contacts answers that it does not exist (not a timeout, 503).
    const other = await request<CreatedTenant>(gateway.adminUrl, 'POST', '/admin/v1/tenants', { token: adminToken, body: { name: 'Other' } });
    const theirs = await request<{ id: string }>(gateway.url, 'POST', '/v1/contacts', { token: other.body.root_key.key, body: { type: 'lead', name: 'Bo', email: 'bo@example.com' } });
    const foreign = await request(gateway.url, 'POST', '/v1/journeys', { token: key, body: { contact_id: theirs.body.id } });
    expect(foreign.status).toBeGreaterThanOrEqual(400);
    expect(foreign.status).toBeLessThan(500);

    expect((await request(gateway.url, 'GET', '/v1/whoami', { token: key })).status).toBe(200); // cached now
    const revoked = await request(gateway.url, 'POST', `/v1/keys/${created.body.id}/revoke`, { token: root });
    expect(revoked.status).toBe(200);
    const after = await request(gateway.url, 'GET', '/v1/whoami', { token: key });
    expect(after.status).toBe(401);
    expect(after.body).toMatchObject({ code: 'key_revoked' });

    const trail = await eventually(async () => {
      const r = await request<{ data: Array<{ type: string; key_id: string | null }> }>(gateway.url, 'GET', `/v1/audit-events?key_id=${created.body.id}`, { token: root });
      const types = r.status === 200 ? r.body.data.map((e) => e.type) : [];
      return types.includes('created') && types.includes('revoked') ? types : undefined;
    }, 20_000);
    expect(trail).toEqual(expect.arrayContaining(['created', 'revoked']));

    // NATS restarts: every relay reads its stream back on reconnect (the durability repair), the
    // consumers resume, and new events still flow, all under the same permissions.
    await nats.nats.restart();
    const again = await eventually(async () => {
      const r = await request<{ id: string }>(gateway.url, 'POST', '/v1/contacts', { token: root, body: { type: 'lead', name: 'Cy', email: 'cy@example.com' } });
      return r.status === 201 ? r : undefined;
    }, 30_000);
    expect((await request(gateway.url, 'POST', '/v1/journeys', { token: root, body: { contact_id: again.body.id } })).status).toBe(201);
    const second = await request<IssuedKey>(gateway.url, 'POST', '/v1/keys', { token: root, body: { name: 'after-restart', scopes: [] } });
    expect(second.status).toBe(201);
    await eventually(async () => {
      const r = await request<{ data: Array<{ type: string }> }>(gateway.url, 'GET', `/v1/audit-events?key_id=${second.body.id}`, { token: root });
      return r.status === 200 && r.body.data.some((e) => e.type === 'created');
    }, 20_000);

    // Nothing any service did was refused by the server, and each connected as itself.
    const log = nats.nats.log();
    expect(log).not.toMatch(/Violation/i);
    expect(log).not.toMatch(/Authorization Error/i);
    for (const s of all) expect(s.output).not.toMatch(/Permissions Violation/i);
  });
});
