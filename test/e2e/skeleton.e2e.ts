import { parseKey, type CreatedTenant, type IssuedKey } from '@keyway/contracts';
import { eventually } from '@keyway/testing';
import { request, startPlatform, type Platform } from './platform';

/**
 * The walking skeleton, end to end through the real gateway over HTTP, every service its own
 * process on real NATS with its own database.
 */
describe('walking skeleton', () => {
  let p: Platform;
  beforeAll(async () => {
    p = await startPlatform('skeleton');
  }, 120_000);
  afterAll(async () => {
    await p?.stop();
  });

  it('operator → tenant → key → whoami → contacts → revoke → 401 → logs from the audit log', async () => {
    const tenant = await request<CreatedTenant>(p.adminUrl, 'POST', '/admin/v1/tenants', { token: p.adminToken, body: { name: 'Acme' } });
    expect(tenant.status).toBe(201);
    const root = tenant.body.root_key.key;
    expect(parseKey(root)).not.toBeNull();

    const created = await request<IssuedKey>(p.url, 'POST', '/v1/keys', { token: root, body: { name: 'reader', scopes: ['contacts:read'] } });
    expect(created.status).toBe(201);
    const key = created.body.key;
    expect(created.body).toMatchObject({ name: 'reader', scopes: ['contacts:read'], status: 'active', last_used_at: null });

    const whoami = await request(p.url, 'GET', '/v1/whoami', { token: key });
    expect(whoami.status).toBe(200);
    expect(whoami.body).toMatchObject({
      api_key_id: created.body.id,
      prefix: created.body.prefix,
      tenant_id: tenant.body.tenant.id,
      scopes: ['contacts:read'],
      environment: 'live',
      rate_limit: { burst_per_second: 60, per_minute: 100, per_hour: 5000, daily: 100000 },
      expires_at: null,
    });
    expect(whoami.headers.get('ratelimit-limit')).not.toBeNull();
    expect(whoami.headers.get('x-request-id')).toBeTruthy();

    const contacts = await request(p.url, 'GET', '/v1/contacts', { token: key });
    expect(contacts.status).toBe(200);
    expect(contacts.body).toEqual({ data: [], page: 1, pageSize: 10, total: 0, hasMore: false, next_cursor: null });

    const forbidden = await request(p.url, 'POST', '/v1/contacts', { token: key, body: { type: 'lead', name: 'A', email: 'a@example.com' } });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body).toMatchObject({ code: 'insufficient_scope', required_scope: 'contacts:write' });

    const revoked = await request(p.url, 'POST', `/v1/keys/${created.body.id}/revoke`, { token: root });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ id: created.body.id, status: 'revoked' });

    const after = await request(p.url, 'GET', '/v1/contacts', { token: key });
    expect(after.status).toBe(401);
    expect(after.body).toMatchObject({ code: 'key_revoked' });
    expect(JSON.stringify(after.body)).toContain(created.body.prefix);
    expect(JSON.stringify(after.body)).not.toContain(key);

    const logs = await eventually(async () => {
      const r = await request<{ data: Array<{ type: string }>; total: number }>(p.url, 'GET', `/v1/keys/${created.body.id}/logs`, { token: root });
      const types = r.status === 200 ? r.body.data.map((e) => e.type) : [];
      return types.includes('revoked') && types.includes('created') ? r : undefined;
    }, 15_000);
    // The key log shows linked entries, and a batch can be linked a moment after a later one is
    // stored (a redelivery, a second replica): wait for both. The trail also carries the gateway's
    // aggregated `used` entries; the lifecycle reads newest first (by occurred_at), once each.
    expect(logs.body.data.map((e) => e.type).filter((t) => t !== 'used')).toEqual(['revoked', 'created']);
  });

  it('answers client mistakes in the documented error shape', async () => {
    const tenant = await request<CreatedTenant>(p.adminUrl, 'POST', '/admin/v1/tenants', { token: p.adminToken, body: { name: 'Shapes' } });
    const root = tenant.body.root_key.key;
    const broken = await request(p.url, 'POST', '/v1/keys', { token: root, rawBody: '{"name": "x", ' });
    expect(broken.status).toBe(400);
    expect(broken.body).toMatchObject({ code: 'invalid_request', error: expect.any(String) });
    const xml = await request(p.url, 'POST', '/v1/keys', { token: root, rawBody: '<key/>', contentType: 'application/xml' });
    expect(xml.status).toBe(415);
    expect(xml.body).toMatchObject({ code: 'unsupported_media_type', error: expect.any(String) });
    const fields = await request<{ details: unknown[] }>(p.url, 'POST', '/v1/keys', { token: root, body: { name: '', scopes: ['nope'] } });
    expect(fields.status).toBe(400);
    expect(fields.body.details.length).toBeGreaterThan(0);
    const missing = await request(p.url, 'GET', '/v1/whoami');
    expect(missing.status).toBe(401);
    expect(missing.body).toMatchObject({ code: 'missing_key' });
    const unknown = await request(p.url, 'GET', '/v1/nothing-here', { token: root });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ code: 'not_found' });
    const big = await request(p.url, 'POST', '/v1/contacts', { token: root, rawBody: JSON.stringify({ name: 'x'.repeat(1_100_000) }) });
    expect(big.status).toBe(413);
    expect(big.body).toMatchObject({ code: 'payload_too_large' });
  });

  it('shows a use in last_used_at within a few seconds, and null again after a rotation', async () => {
    const tenant = await request<CreatedTenant>(p.adminUrl, 'POST', '/admin/v1/tenants', { token: p.adminToken, body: { name: 'Usage' } });
    const root = tenant.body.root_key.key;
    const created = await request<IssuedKey>(p.url, 'POST', '/v1/keys', { token: root, body: { name: 'used', scopes: [] } });
    for (let i = 0; i < 3; i++) expect((await request(p.url, 'GET', '/v1/whoami', { token: created.body.key })).status).toBe(200);
    const used = await eventually(async () => {
      const r = await request<{ last_used_at: string | null }>(p.url, 'GET', `/v1/keys/${created.body.id}`, { token: root });
      return r.body.last_used_at ? r.body.last_used_at : undefined;
    }, 10_000, 100);
    expect(Date.now() - Date.parse(used)).toBeLessThan(10_000);
    const rotated = await request<IssuedKey>(p.url, 'POST', `/v1/keys/${created.body.id}/rotate`, { token: root, body: {} });
    expect(rotated.status).toBe(200);
    expect(rotated.body.last_used_at).toBeNull();
    expect((await request(p.url, 'GET', '/v1/whoami', { token: created.body.key })).status).toBe(401);
    expect((await request(p.url, 'GET', '/v1/whoami', { token: rotated.body.key })).status).toBe(200);
  });
});
