import { ALL_SCOPES, grants, mintKey, ROUTES, Rpc, type ErrorBody, type Scope } from '@keyway/contracts';
import { eventually, startInfra, type TestInfra } from '@keyway/testing';
import { FakeServices, http, startGateway, type MintedKey, type RunningGateway } from '../../test/fakes';
import { urlOf, validBody } from '../../test/samples';
import { awayFromBoundary } from '../rate-limit/testing';

const err = (b: unknown): ErrorBody => b as ErrorBody;
type Echo = { echo: { subject: string; pattern: string; data: { ctx: Record<string, unknown>; params: unknown; query: unknown; body?: unknown } } };

describe('gateway routing to fake services on NATS', () => {
  let infra: TestInfra;
  let fake: FakeServices;
  let gw: RunningGateway;
  const keys = new Map<Scope, MintedKey>();

  beforeAll(async () => {
    infra = await startInfra('gateway_routes');
    fake = await FakeServices.start(infra.natsUrl);
    gw = await startGateway(infra, { RPC_TIMEOUT_MS: '300' });
    for (const s of ALL_SCOPES) keys.set(s, fake.mint([s]));
  });
  afterAll(async () => {
    await gw?.close();
    await fake?.stop();
    await infra?.stop();
  });

  it('every sample body is accepted by its route schema', () => {
    for (const r of ROUTES) if (r.body) expect(r.body.safeParse(validBody(r)).success).toBe(true);
  });

  describe.each(ROUTES.map((r) => [`${r.method} ${r.path}`, r] as const))('%s', (_name, route) => {
    it.each(ALL_SCOPES.map((s) => [s] as const))('with only %s', async (scope) => {
      const key = keys.get(scope)!;
      const r = await http(gw.url, route.method, urlOf(route), { key: key.key, ...(route.body ? { body: validBody(route) } : {}) });
      expect(r.headers.get('ratelimit-limit')).toBeTruthy();
      expect(r.headers.get('x-request-id')).toMatch(/^req_/);
      if (route.allScopes ? route.scopes.every((s) => grants([scope], s)) : route.scopes.some((s) => grants([scope], s))) {
        expect(r.status).toBe(route.statusInReply ? 201 : route.status);
        if (route.status === 204) {
          expect(r.text).toBe('');
          return;
        }
        const echo = (r.body as Echo).echo;
        expect(echo.subject).toBe(route.subject);
        expect(echo.pattern).toBe(route.subject);
        expect(echo.data.ctx).toEqual({
          tenant_id: key.record.tenant_id,
          actor: { type: 'key', id: key.record.key_id },
          request_id: r.headers.get('x-request-id'),
          scopes: [scope],
          environment: key.record.environment,
        });
        if (route.params) expect(echo.data.params).toEqual(route.path.includes(':external_id') ? { external_id: 'ext-1' } : { id: 'ct_abc123' });
        if (route.body) expect(echo.data.body).toEqual(validBody(route));
      } else {
        expect(r.status).toBe(403);
        const required = route.allScopes ? route.scopes.find((s) => !grants([scope], s)) : route.scopes[0];
        expect(err(r.body)).toMatchObject({ code: 'insufficient_scope', required_scope: required });
      }
    });
  });

  it('keys.logs accepts audit:read as well as keys:read', async () => {
    for (const s of ['audit:read', 'keys:read', 'keys:write'] as const) {
      expect((await http(gw.url, 'GET', '/v1/keys/key_1/logs', { key: keys.get(s)!.key })).status).toBe(200);
    }
  });

  it('DELETE /v1/test-data: a test key with contacts:write and journeys:write, both services confirm (204); a live key 403; one silent 503', async () => {
    const both = ['contacts:write', 'journeys:write'] as const;
    const testKey = fake.mint(both, { environment: 'test' });
    const calls: string[] = [];
    for (const subject of [Rpc.contactsPurgeTestData, Rpc.journeysPurgeTestData]) {
      fake.overrides.set(subject, { response: null });
    }
    const seen = fake.nc.subscribe('keyway.rpc.*.test-data.purge', { callback: (_e, m) => void calls.push(m.subject) });
    try {
      const ok = await http(gw.url, 'DELETE', '/v1/test-data', { key: testKey.key });
      expect([ok.status, ok.text]).toEqual([204, '']);
      expect(calls.sort()).toEqual([Rpc.contactsPurgeTestData, Rpc.journeysPurgeTestData].sort());

      const live = await http(gw.url, 'DELETE', '/v1/test-data', { key: fake.mint(both).key });
      expect([live.status, err(live.body).code]).toEqual([403, 'forbidden']);
      const half = await http(gw.url, 'DELETE', '/v1/test-data', { key: fake.mint(['contacts:write'], { environment: 'test' }).key });
      expect([half.status, err(half.body)]).toEqual([403, expect.objectContaining({ code: 'insufficient_scope', required_scope: 'journeys:write' })]);

      fake.overrides.set(Rpc.journeysPurgeTestData, 'silent');
      const silent = await http(gw.url, 'DELETE', '/v1/test-data', { key: testKey.key });
      expect([silent.status, err(silent.body).code]).toEqual([503, 'unavailable']);
      fake.overrides.set(Rpc.journeysPurgeTestData, { err: { error: 'no', code: 'not_found' } });
      fake.overrides.set(Rpc.contactsPurgeTestData, 'silent');
      const oneSilent = await http(gw.url, 'DELETE', '/v1/test-data', { key: testKey.key });
      expect([oneSilent.status, err(oneSilent.body).code]).toEqual([503, 'unavailable']);
    } finally {
      seen.unsubscribe();
      fake.overrides.delete(Rpc.contactsPurgeTestData);
      fake.overrides.delete(Rpc.journeysPurgeTestData);
    }
  });

  it('an upsert answers the status its service chose (201 or 200) with the body alone', async () => {
    const k = keys.get('contacts:write')!;
    const body = validBody(ROUTES.find((r) => r.name === 'contacts.upsert')!);
    const view = { id: 'ct_1', type: 'user', name: 'Ada' };
    fake.overrides.set(Rpc.contactsUpsert, { response: { status: 200, body: view } });
    try {
      const r = await http(gw.url, 'PUT', '/v1/contacts/by-external-id/u-1', { key: k.key, body });
      expect([r.status, r.body]).toEqual([200, view]);
      fake.overrides.set(Rpc.contactsUpsert, { response: { status: 204, body: view } });
      expect((await http(gw.url, 'PUT', '/v1/contacts/by-external-id/u-1', { key: k.key, body })).status).toBe(500);
    } finally {
      fake.overrides.delete(Rpc.contactsUpsert);
    }
  });

  it('maps a service error code to its status and passes its details on', async () => {
    const k = keys.get('contacts:write')!;
    fake.overrides.set(Rpc.contactsGet, { err: { error: 'No such contact', code: 'not_found' } });
    fake.overrides.set(Rpc.contactsCreate, { err: { error: 'email taken', code: 'conflict' } });
    fake.overrides.set(Rpc.contactsList, { err: { error: 'at Object.<anonymous> (/srv/x.js:1:1)', code: 'internal' } });
    try {
      const nf = await http(gw.url, 'GET', '/v1/contacts/ct_x', { key: k.key });
      expect([nf.status, err(nf.body)]).toEqual([404, { error: 'No such contact', code: 'not_found' }]);
      const c = await http(gw.url, 'POST', '/v1/contacts', { key: k.key, body: validBody(ROUTES.find((r) => r.name === 'contacts.create')!) });
      expect([c.status, err(c.body).code]).toEqual([409, 'conflict']);
      const i = await http(gw.url, 'GET', '/v1/contacts', { key: k.key });
      expect(i.status).toBe(500);
      expect(i.body).toEqual({ error: 'Something went wrong on our side', code: 'internal' });
    } finally {
      for (const s of [Rpc.contactsGet, Rpc.contactsCreate, Rpc.contactsList]) fake.overrides.delete(s);
    }
  });

  it('503 when no service answers (no responders) or it answers too late (timeout)', async () => {
    const k = keys.get('journeys:write')!;
    await fake.unsubscribe(Rpc.journeysDelete);
    const asked = performance.now();
    const none = await http(gw.url, 'DELETE', '/v1/journeys/jr_1', { key: k.key });
    expect([none.status, err(none.body).code]).toEqual([503, 'unavailable']);
    // NATS says at once that nobody listens: no waiting out the 300 ms timeout.
    expect(performance.now() - asked).toBeLessThan(200);
    fake.overrides.set(Rpc.journeysGet, 'silent');
    try {
      const slow = await http(gw.url, 'GET', '/v1/journeys/jr_1', { key: k.key });
      expect([slow.status, err(slow.body).code]).toEqual([503, 'unavailable']);
      expect(slow.text).not.toMatch(/at .*\.js/);
    } finally {
      fake.overrides.delete(Rpc.journeysGet);
    }
  });

  it('400 invalid_request with details for params, query and body, before any service call', async () => {
    const k = keys.get('contacts:write')!;
    const big = await http(gw.url, 'GET', '/v1/contacts?pageSize=51', { key: k.key });
    expect(big.status).toBe(400);
    expect(err(big.body)).toMatchObject({ code: 'invalid_request', details: [{ field: 'pageSize' }] });
    const unknownQuery = await http(gw.url, 'GET', '/v1/contacts/ct_1?x=1', { key: k.key });
    expect(unknownQuery.status).toBe(400);
    const unknownField = await http(gw.url, 'POST', '/v1/contacts', { key: k.key, body: { type: 'lead', name: 'A', email: 'a@b.co', role: 'admin' } });
    expect(unknownField.status).toBe(400);
    expect(err(unknownField.body).details?.length).toBeGreaterThan(0);
    const longId = await http(gw.url, 'GET', `/v1/contacts/${'x'.repeat(101)}`, { key: k.key });
    expect([longId.status, err(longId.body).code]).toEqual([400, 'invalid_request']);
    const notObject = await http(gw.url, 'POST', '/v1/contacts', { key: k.key, body: [1, 2] });
    expect([notObject.status, err(notObject.body).code]).toEqual([400, 'invalid_request']);
  });

  it('415 for a body that is not JSON, 400 for broken JSON, 413 over 1 MiB, with rate-limit headers', async () => {
    const k = keys.get('contacts:write')!;
    const form = await http(gw.url, 'POST', '/v1/contacts', { key: k.key, rawBody: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect([form.status, err(form.body).code]).toEqual([415, 'unsupported_media_type']);
    expect(form.headers.get('ratelimit-remaining')).toBeTruthy();
    const text = await http(gw.url, 'POST', '/v1/contacts', { key: k.key, rawBody: '{}', headers: { 'content-type': 'text/plain' } });
    expect([text.status, err(text.body).code]).toEqual([415, 'unsupported_media_type']);
    const broken = await http(gw.url, 'POST', '/v1/contacts', { key: k.key, rawBody: '{"name":', headers: { 'content-type': 'application/json' } });
    expect([broken.status, err(broken.body).code]).toEqual([400, 'invalid_request']);
    const huge = await http(gw.url, 'POST', '/v1/contacts', {
      key: k.key,
      rawBody: JSON.stringify({ name: 'x'.repeat(1024 * 1024) }),
      headers: { 'content-type': 'application/json' },
    });
    expect([huge.status, err(huge.body).code]).toEqual([413, 'payload_too_large']);
    // No key: 401 before the body is even read.
    const anon = await http(gw.url, 'POST', '/v1/contacts', { rawBody: 'x', headers: { 'content-type': 'text/plain' } });
    expect([anon.status, err(anon.body).code]).toEqual([401, 'missing_key']);
    // A bare POST with a JSON content type and no body is no body.
    const bare = await http(gw.url, 'POST', '/v1/keys/key_1/revoke', { key: keys.get('keys:write')!.key, headers: { 'content-type': 'application/json' } });
    expect(bare.status).toBe(200);
  });

  it('404 not_found in the error shape for unknown routes and methods', async () => {
    for (const [m, p] of [['GET', '/nope'], ['GET', '/v1/nope'], ['PUT', '/v1/contacts/ct_1'], ['GET', '/v2/contacts']] as const) {
      const r = await http(gw.url, m, p, { key: keys.get('contacts:read')!.key });
      expect({ m, p, status: r.status, code: err(r.body).code }).toEqual({ m, p, status: 404, code: 'not_found' });
      expect(r.headers.get('x-request-id')).toMatch(/^req_/);
    }
  });

  it('echoes a sane X-Request-Id and replaces an insane one', async () => {
    const k = keys.get('contacts:read')!;
    const ok = await http(gw.url, 'GET', '/v1/contacts/ct_1', { key: k.key, headers: { 'x-request-id': 'trace-abc.123' } });
    expect(ok.headers.get('x-request-id')).toBe('trace-abc.123');
    expect((ok.body as Echo).echo.data.ctx.request_id).toBe('trace-abc.123');
    for (const bad of ['a b', 'x'.repeat(200), '<script>']) {
      const r = await http(gw.url, 'GET', '/v1/whoami', { key: k.key, headers: { 'x-request-id': bad } });
      expect(r.headers.get('x-request-id')).toMatch(/^req_[0-9a-z]{20}$/);
    }
    const unauth = await http(gw.url, 'GET', '/v1/whoami', { headers: { 'x-request-id': 'mine-1' } });
    expect(unauth.headers.get('x-request-id')).toBe('mine-1');
  });

  it('429 with Retry-After and the documented body; failed auth never counts', async () => {
    const k = fake.mint(['contacts:read'], { override: { burst_per_second: 3 } });
    await awayFromBoundary('burst_per_second', 700);
    for (let i = 0; i < 5; i++) await http(gw.url, 'GET', '/v1/whoami', { key: `${k.key.slice(0, -1)}${k.key.endsWith('A') ? 'B' : 'A'}` });
    // Calls until the first 429: the 4th in one second's window. On a machine slow enough for the
    // calls to straddle a boundary, the next window admits 3 more first, so a fixed count of calls
    // could see no 429 at all.
    const statuses: number[] = [];
    let last: Awaited<ReturnType<typeof http>> | undefined;
    for (let i = 0; i < 20 && last?.status !== 429; i++) {
      last = await http(gw.url, 'GET', '/v1/contacts/ct_1', { key: k.key });
      statuses.push(last.status);
    }
    // The five calls that failed authentication did not count: the first three are admitted.
    expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    const limited = last!;
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(limited.headers.get('ratelimit-limit')).toBe('3');
    expect(limited.headers.get('ratelimit-remaining')).toBe('0');
    expect(limited.body).toMatchObject({ code: 'rate_limited', window: 'burst_per_second', limit: 3, remaining: 0 });
    expect(typeof (limited.body as { retry_after: number }).retry_after).toBe('number');
  });

  describe('POST /admin/v1/tenants', () => {
    const token = 'operator-token-for-tests-0123456789';
    it('creates a tenant with the operator token as an operator', async () => {
      const r = await http(gw.adminUrl, 'POST', '/admin/v1/tenants', { headers: { authorization: `Bearer ${token}` }, body: { name: 'Acme' } });
      expect(r.status).toBe(201);
      const echo = (r.body as Echo).echo;
      expect(echo.subject).toBe(Rpc.tenantsCreate);
      expect(echo.data.ctx).toMatchObject({ tenant_id: '', actor: { type: 'operator', id: 'operator' } });
      expect(echo.data.body).toEqual({ name: 'Acme' });
    });
    it('refuses API keys, wrong tokens and invalid bodies', async () => {
      const apiKey = await http(gw.adminUrl, 'POST', '/admin/v1/tenants', { key: keys.get('keys:write')!.key, body: { name: 'x' } });
      expect([apiKey.status, err(apiKey.body).code]).toEqual([401, 'unauthorized']);
      const wrong = await http(gw.adminUrl, 'POST', '/admin/v1/tenants', { headers: { authorization: `Bearer ${token}x` }, body: { name: 'x' } });
      expect(wrong.status).toBe(401);
      const none = await http(gw.adminUrl, 'POST', '/admin/v1/tenants', { body: { name: 'x' } });
      expect(none.status).toBe(401);
      const bad = await http(gw.adminUrl, 'POST', '/admin/v1/tenants', { headers: { authorization: `Bearer ${token}` }, body: { name: '' } });
      expect([bad.status, err(bad.body).code]).toEqual([400, 'invalid_request']);
    });
    it('answers on the admin listener only: on the public port /admin/v1 is an unknown route (404), and the admin listener serves nothing public', async () => {
      const auth = { authorization: `Bearer ${token}` };
      for (const [method, path] of [['POST', '/admin/v1/tenants'], ['GET', '/admin/v1/tenants'], ['PATCH', '/admin/v1/tenants/ten_1'], ['POST', '/%61dmin/v1/tenants'], ['GET', '/admin/v1/keys?prefix=kw_live_x']] as const) {
        const pub = await http(gw.url, method, path, { headers: auth, ...(method === 'GET' ? {} : { body: { name: 'Acme' } }) });
        expect([path, pub.status, pub.body]).toEqual([path, 404, { error: 'No such route', code: 'not_found' }]);
        expect(pub.headers.get('x-request-id')).toMatch(/^req_/);
      }
      const listed = await http(gw.adminUrl, 'GET', '/admin/v1/tenants', { headers: auth });
      expect([listed.status, (listed.body as Echo).echo.subject]).toEqual([200, Rpc.tenantsList]);
      for (const path of ['/v1/whoami', '/health/ready', '/docs/json', '/nowhere']) {
        const r = await http(gw.adminUrl, 'GET', path, { key: keys.get('keys:write')!.key });
        expect([path, r.status, r.body]).toEqual([path, 404, { error: 'No such route', code: 'not_found' }]);
        expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      }
    });
    it('the incident tools: a key found by prefix only (a whole key is refused), a revoke only with a reason, the relay, and a tenant\'s verify in that tenant', async () => {
      const auth = { authorization: `Bearer ${token}` };
      const found = await http(gw.adminUrl, 'GET', '/admin/v1/keys?prefix=kw_live_abcd1234', { headers: auth });
      expect([found.status, (found.body as Echo).echo.subject, (found.body as Echo).echo.data.query]).toEqual([200, Rpc.adminKeysFind, { prefix: 'kw_live_abcd1234' }]);
      const whole = mintKey('live').key;
      for (const q of [`prefix=${whole}`, 'prefix=kw_live_ABCD1234', 'prefix=', '', 'prefix=kw_live_abcd1234&x=1']) {
        const r = await http(gw.adminUrl, 'GET', `/admin/v1/keys?${q}`, { headers: auth });
        expect([q, r.status, err(r.body).code]).toEqual([q, 400, 'invalid_request']);
        expect(r.text).not.toContain(whole);
      }
      const revoked = await http(gw.adminUrl, 'POST', '/admin/v1/keys/key_1/revoke', { headers: auth, body: { reason: 'leaked' } });
      expect([revoked.status, (revoked.body as Echo).echo.subject, (revoked.body as Echo).echo.data.body, (revoked.body as Echo).echo.data.ctx.actor]).toEqual([
        200,
        Rpc.adminKeysRevoke,
        { reason: 'leaked' },
        { type: 'operator', id: 'operator' },
      ]);
      for (const body of [{}, { reason: '' }, { reason: '   ' }, { reason: 'x'.repeat(501) }, { reason: 'leaked', extra: 1 }, undefined]) {
        const r = await http(gw.adminUrl, 'POST', '/admin/v1/keys/key_1/revoke', { headers: auth, ...(body === undefined ? {} : { body }) });
        expect([JSON.stringify(body), r.status]).toEqual([JSON.stringify(body), 400]);
      }
      const relay = await http(gw.adminUrl, 'GET', '/admin/v1/relay', { headers: auth });
      expect([relay.status, (relay.body as Echo).echo.subject]).toEqual([200, Rpc.adminRelayStatus]);
      const verify = await http(gw.adminUrl, 'GET', '/admin/v1/tenants/ten_acme/audit/verify', { headers: auth });
      expect([verify.status, (verify.body as Echo).echo.subject, (verify.body as Echo).echo.data.ctx.tenant_id, (verify.body as Echo).echo.data.ctx.actor]).toEqual([200, Rpc.auditEventsVerify, 'ten_acme', { type: 'operator', id: 'operator' }]);
      // An API key never reaches them, not even to ask about its own tenant.
      for (const [method, path] of [['GET', '/admin/v1/keys?prefix=kw_live_abcd1234'], ['GET', '/admin/v1/relay'], ['GET', '/admin/v1/tenants/ten_acme/audit/verify']] as const) {
        expect((await http(gw.adminUrl, method, path, { key: keys.get('audit:read')!.key })).status).toBe(401);
      }
    });
    it('answers 503 when no operator token is configured', async () => {
      const off = await startGateway(infra, { KEYWAY_ADMIN_TOKEN: '' });
      try {
        const r = await http(off.adminUrl, 'POST', '/admin/v1/tenants', { headers: { authorization: 'Bearer anything-at-all-here' }, body: { name: 'x' } });
        expect([r.status, err(r.body).code]).toEqual([503, 'unavailable']);
      } finally {
        await off.close();
      }
    });
  });

  it('health: live always; ready without identity, which the body reports; cached keys keep working, uncached ones get 503', async () => {
    expect((await http(gw.url, 'GET', '/health/live')).status).toBe(200);
    const ready = await http(gw.url, 'GET', '/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ status: 'ok', details: { nats: { status: 'up' }, identity: { status: 'up' } } });
    const cached = keys.get('keys:read')!;
    expect((await http(gw.url, 'GET', '/v1/whoami', { key: cached.key })).status).toBe(200);
    const uncached = fake.mint(['keys:read']);
    fake.overrides.set(Rpc.keysVerify, 'silent');
    try {
      const degraded = await http(gw.url, 'GET', '/health/ready');
      expect(degraded.status).toBe(200);
      expect(degraded.body).toMatchObject({ status: 'ok', details: { nats: { status: 'up' }, identity: { status: 'down', message: 'identity: unavailable' } } });
      expect((degraded.body as { error: object }).error).toEqual({});
      expect((await http(gw.url, 'GET', '/v1/whoami', { key: cached.key })).status).toBe(200);
      const refused = await http(gw.url, 'GET', '/v1/whoami', { key: uncached.key });
      expect([refused.status, err(refused.body).code]).toEqual([503, 'unavailable']);
    } finally {
      fake.overrides.delete(Rpc.keysVerify);
    }
    expect((await http(gw.url, 'GET', '/v1/whoami', { key: uncached.key })).status).toBe(200);
  });

  it('health: Redis is required when configured (DESIGN, Health): unreachable, the gateway is unready and says limits are per replica', async () => {
    // startGateway leaves Redis out unless asked: this gateway has none, so nothing to report.
    expect((await http(gw.url, 'GET', '/health/ready')).body).not.toHaveProperty('details.redis');
    if (infra.redisUrl) {
      const withRedis = await startGateway(infra, { REDIS_URL: infra.redisUrl });
      try {
        // Up once the limiter's connection is ready (the boot waits for it up to 2 s).
        await eventually(async () => (await http(withRedis.url, 'GET', '/health/ready')).text.includes('"redis":{"status":"up"}'), 5_000);
      } finally {
        await withRedis.close();
      }
    }
    const noRedis = await startGateway(infra, { REDIS_URL: 'redis://127.0.0.1:1' });
    try {
      const r = await http(noRedis.url, 'GET', '/health/ready');
      expect(r.status).toBe(503);
      expect(r.body).toMatchObject({ checks: { status: 'error', details: { nats: { status: 'up' }, redis: { status: 'down', message: expect.stringMatching(/per-replica memory/) } } } });
      // Live all the same: the process is fine, only its limits would not be shared.
      expect((await http(noRedis.url, 'GET', '/health/live')).status).toBe(200);
    } finally {
      await noRedis.close();
    }
  });
});
