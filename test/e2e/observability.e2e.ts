import type { CreatedTenant, IssuedKey } from '@keyway/contracts';
import { eventually } from '@keyway/testing';
import { request, startPlatform, type Platform } from './platform';

/**
 * Metrics and trace ids as an operator sees them, with tracing off (the default): GET /metrics on
 * the gateway's admin listener and on each service's health port after real traffic, which must
 * never carry a key id, a tenant id, a key prefix or a secret, wherever the raw paths held them;
 * and a client's trace id in a service's log line. Spans exported over OTLP: tracing.int-spec.ts.
 */
const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';

describe('observability: /metrics and traces', () => {
  let p: Platform;

  beforeAll(async () => {
    // warn: the test reads journeys' warning line; one by one: the full platform at once is slow on 2 loaded cores.
    p = await startPlatform('observability', { LOG_LEVEL: 'warn' }, { services: ['identity', 'contacts', 'journeys'], oneByOne: true });
  }, 180_000);
  afterAll(async () => {
    await p?.stop();
  });

  it('metrics after real traffic: templates, codes and caches, and no id, prefix or secret anywhere', async () => {
    const tenant = await request<CreatedTenant>(p.adminUrl, 'POST', '/admin/v1/tenants', { token: p.adminToken, body: { name: 'Obs' } });
    expect(tenant.status).toBe(201);
    const root = tenant.body.root_key.key;
    const created = await request<IssuedKey>(p.url, 'POST', '/v1/keys', { token: root, body: { name: 'obs', scopes: ['contacts:write', 'journeys:write'] } });
    expect(created.status).toBe(201);
    const key = created.body.key;
    for (let i = 0; i < 3; i++) expect((await request(p.url, 'GET', '/v1/whoami', { token: key })).status).toBe(200);
    expect((await request(p.url, 'GET', `/v1/keys/${created.body.id}`, { token: root })).status).toBe(200);
    expect((await request(p.url, 'GET', '/v1/keys/key_doesnotexist000000000000', { token: root })).status).toBe(404);
    expect((await request(p.url, 'GET', '/v1/whoami', { token: `${key.slice(0, -4)}AAAA` })).status).toBe(401);
    expect((await request(p.url, 'GET', `/v1/nothing/${tenant.body.tenant.id}/${created.body.prefix}`, { token: key })).status).toBe(404);
    const contact = await request<{ id: string }>(p.url, 'POST', '/v1/contacts', { token: key, body: { type: 'lead', name: 'A', email: 'obs@example.com' } });
    expect(contact.status).toBe(201);
    expect((await request(p.url, 'GET', `/v1/contacts/${contact.body.id}`, { token: key })).status).toBe(200);

    const gw = await (await fetch(`${p.adminUrl}/metrics`)).text();
    expect(gw).toMatch(/^keyway_http_requests_total\{route="\/v1\/whoami",method="GET",status="200",code="ok",service="gateway"\} 3$/m);
    expect(gw).toMatch(/^keyway_http_requests_total\{route="\/v1\/keys\/:id",method="GET",status="404",code="not_found",service="gateway"\} 1$/m);
    expect(gw).toMatch(/^keyway_http_requests_total\{route="unmatched",method="GET",status="404",code="not_found",service="gateway"\} 1$/m);
    expect(gw).toMatch(/^keyway_http_request_duration_seconds_bucket\{route="\/v1\/contacts\/:id",method="GET",le="\+Inf",service="gateway"\} 1$/m);
    expect(gw).toMatch(/^keyway_http_request_duration_seconds_count\{route="\/v1\/whoami",method="GET",service="gateway"\} 4$/m);
    expect(gw).toMatch(/^keyway_auth_failures_total\{code="[a-z_]+",service="gateway"\} 1$/m);
    expect(gw).toMatch(/^keyway_verification_cache_total\{result="hit",service="gateway"\} [1-9]/m);
    expect(gw).toMatch(/^keyway_verification_cache_total\{result="miss",service="gateway"\} [1-9]/m);
    expect(gw).toMatch(/^keyway_rpc_duration_seconds_count\{subject="keyway\.rpc\.contacts\.[a-z.]+",service="gateway"\} [1-9]/m);
    expect(gw).toMatch(/^keyway_rate_limit_fallback\{service="gateway"\} [01]$/m);
    expect(gw).toMatch(/^keyway_dependency_up\{dependency="identity",service="gateway"\} 1$/m);
    expect(gw).toMatch(/^keyway_dependency_up\{dependency="nats",service="gateway"\} 1$/m);
    expect(gw).toMatch(/^nodejs_eventloop_lag_seconds\{service="gateway"\} /m);

    const texts = [gw];
    for (const s of p.services) {
      const text = await (await fetch(`${s.url}/metrics`)).text();
      expect(text).toMatch(new RegExp(`^process_cpu_user_seconds_total\\{service="${s.app}"\\} `, 'm'));
      expect(text).toMatch(new RegExp(`^keyway_dependency_up\\{dependency="database",service="${s.app}"\\} 1$`, 'm'));
      texts.push(text);
    }
    // Not on the public port.
    expect((await fetch(`${p.url}/metrics`)).status).toBe(404);

    const secrets = [tenant.body.tenant.id, root, key, created.body.id, created.body.prefix, contact.body.id, 'key_doesnotexist'];
    for (const text of texts) for (const s of secrets) expect(text).not.toContain(s);
    // Nothing id-shaped at all: ids are `<prefix>_<base58>`.
    for (const text of texts) expect(text).not.toMatch(/\b(ten|key|ct|jr|evt)_[A-Za-z0-9]{8,}/);
  });

  it("a client's traceparent reaches the service handler's log lines, with the customer's request id (OTel off)", async () => {
    const tenant = await request<CreatedTenant>(p.adminUrl, 'POST', '/admin/v1/tenants', { token: p.adminToken, body: { name: 'Traced' } });
    const root = tenant.body.root_key.key;
    const contact = await request<{ id: string }>(p.url, 'POST', '/v1/contacts', { token: root, body: { type: 'lead', name: 'T', email: 't@example.com' } });
    expect(contact.status).toBe(201);
    // Contacts gone: journeys' check of the contact_id fails, and journeys logs why, for this request.
    const contacts = p.services.find((s) => s.app === 'contacts')!;
    await contacts.kill();
    const requestId = 'req-obs-trace-1';
    const journey = await request(p.url, 'POST', '/v1/journeys', {
      token: root,
      body: { contact_id: contact.body.id },
      headers: { traceparent: `00-${TRACE_ID}-b7ad6b7169203331-01`, 'x-request-id': requestId },
    });
    expect(journey.status).toBe(503);
    const line = await eventually(async () =>
      p
        .output()
        .split('\n')
        .find((l) => l.includes('could not check a contact_id')),
    );
    expect(JSON.parse(line)).toMatchObject({ name: 'journeys', request_id: requestId, trace_id: TRACE_ID });
  });
});
