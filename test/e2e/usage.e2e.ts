import type { CreatedTenant, IssuedKey, ScopeReport, UsageReport } from '@keyway/contracts';
import { eventually } from '@keyway/testing';
import { request, startPlatform, type Platform } from './platform';

/**
 * Usage over the whole platform: the gateway counts every authenticated call, audit-log sums it
 * per minute, and the two routes answer a key's owner only.
 */
describe('key usage and the scope report', () => {
  let p: Platform;
  beforeAll(async () => {
    p = await startPlatform('usage', { USAGE_FLUSH_MS: '200' });
  }, 120_000);
  afterAll(async () => {
    await p?.stop();
  });

  it('counts the calls of a key, reports the scopes it needed, and hides both from another tenant', async () => {
    const tenant = await request<CreatedTenant>(p.adminUrl, 'POST', '/admin/v1/tenants', { token: p.adminToken, body: { name: 'Usage' } });
    const other = await request<CreatedTenant>(p.adminUrl, 'POST', '/admin/v1/tenants', { token: p.adminToken, body: { name: 'Other' } });
    const root = tenant.body.root_key.key;
    const created = await request<IssuedKey>(p.url, 'POST', '/v1/keys', { token: root, body: { name: 'writer', scopes: ['contacts:write', 'keys:read'] } });
    expect(created.status).toBe(201);
    const { id, key } = created.body;

    const startMinute = new Date(Math.floor(Date.now() / 60_000) * 60_000).toISOString();
    for (let i = 0; i < 3; i++) expect((await request(p.url, 'GET', '/v1/contacts', { token: key })).status).toBe(200);
    expect((await request(p.url, 'GET', '/v1/whoami', { token: key })).status).toBe(200);
    expect((await request(p.url, 'GET', '/v1/users', { token: key })).status).toBe(403);

    const sum = (r: UsageReport) => r.data.reduce((n, b) => n + b.requests, 0);
    const usage = await eventually(async () => {
      const r = await request<UsageReport>(p.url, 'GET', `/v1/keys/${id}/usage?interval=minute&from=${encodeURIComponent(startMinute)}`, { token: root });
      return r.status === 200 && sum(r.body) >= 5 ? r.body : undefined;
    }, 30_000, 250);
    expect(sum(usage)).toBe(5);
    expect(usage.data.every((b) => b.rate_limited === 0)).toBe(true);

    const report = await eventually(async () => {
      const r = await request<ScopeReport>(p.url, 'GET', `/v1/keys/${id}/scope-report`, { token: key });
      return r.status === 200 && r.body.used.some((u) => u.scope === 'keys:read') ? r.body : undefined;
    }, 30_000, 250);
    expect(report.granted).toEqual(['contacts:write', 'keys:read']);
    expect(report.used.map((u) => u.scope)).toEqual(['contacts:read', 'keys:read']);
    expect(report.unused).toEqual(['contacts:write']);

    // Another tenant's key is 404; a range over 1,440 buckets is 400 naming the field.
    const elsewhere = await request(p.url, 'GET', `/v1/keys/${id}/usage`, { token: other.body.root_key.key });
    expect([elsewhere.status, elsewhere.body.code]).toEqual([404, 'not_found']);
    expect((await request(p.url, 'GET', `/v1/keys/${id}/scope-report`, { token: other.body.root_key.key })).status).toBe(404);
    const tooLong = await request(p.url, 'GET', `/v1/keys/${id}/usage?interval=minute&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:01Z`, { token: root });
    expect([tooLong.status, tooLong.body]).toMatchObject([400, { code: 'invalid_request', details: [{ field: 'from' }] }]);
  });
});
