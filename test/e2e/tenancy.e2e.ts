import { ROUTES, type CreatedTenant } from '@keyway/contracts';
import { validBody } from '../../apps/gateway/test/samples';
import { request, startPlatform, type Platform } from './platform';

/**
 * Existence is never revealed across tenants: for every route of the public table that takes an
 * id, another tenant's real id answers 404 not_found — and the resource is untouched afterwards.
 */
describe('tenant isolation on every id-bearing route', () => {
  let p: Platform;
  beforeAll(async () => {
    p = await startPlatform('tenancy');
  }, 120_000);
  afterAll(async () => {
    await p?.stop();
  });

  it("answers 404 for another tenant's id everywhere", async () => {
    const mk = async (name: string) => (await request<CreatedTenant>(p.adminUrl, 'POST', '/admin/v1/tenants', { token: p.adminToken, body: { name } })).body;
    const a = await mk('Owner');
    const b = await mk('Intruder');
    const owner = a.root_key.key;
    const create = async (path: string, body: unknown) => {
      const r = await request<{ id: string }>(p.url, 'POST', path, { token: owner, body });
      expect(r.status).toBe(201);
      return r.body.id;
    };
    const ids: Record<string, string> = {
      keys: await create('/v1/keys', { name: 'victim', scopes: [] }),
      users: await create('/v1/users', { name: 'Ada', email: 'ada@example.com', password: 'correct horse' }),
      contacts: await create('/v1/contacts', { type: 'lead', name: 'Ada', email: 'ada@example.com' }),
      accounts: await create('/v1/accounts', { name: 'Acme' }),
      journeys: await create('/v1/journeys', { anonymous_id: 'anon-1' }),
    };
    const idRoutes = ROUTES.filter((r) => r.path.includes(':id'));
    expect(idRoutes.length).toBeGreaterThanOrEqual(19);
    for (const route of idRoutes) {
      const resource = route.path.split('/')[2]!;
      const id = ids[resource];
      if (!id) throw new Error(`no ${resource} created for ${route.name}`);
      const body = validBody(route);
      const r = await request(p.url, route.method, route.path.replace(':id', id), { token: b.root_key.key, ...(body !== undefined ? { body } : {}) });
      expect({ route: route.name, status: r.status, code: r.body?.code }).toEqual({ route: route.name, status: 404, code: 'not_found' });
    }
    for (const [resource, id] of Object.entries(ids)) {
      const r = await request(p.url, 'GET', `/v1/${resource}/${id}`, { token: owner });
      expect({ resource, status: r.status }).toEqual({ resource, status: 200 });
    }
  });
});
