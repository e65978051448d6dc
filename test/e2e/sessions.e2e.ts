import { randomBytes } from 'node:crypto';
import type { CreatedTenant, ErrorBody, IssuedKey, KeyView, Page, SessionView, UserView } from '@keyway/contracts';
import { jetStreamContext } from '@keyway/messaging';
import { eventually, ServiceProcess, startInfra, type TestInfra } from '@keyway/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { request, type Answer } from './platform';

/**
 * Dashboard sessions over HTTP, security first (issue 10, item 2): identity and two gateway
 * replicas as built processes on one NATS. Gateway A takes the socket's address as the client's;
 * gateway B sits "behind a proxy" (TRUST_PROXY=true) and reads X-Forwarded-For. Sessions are
 * cached 30 s at each gateway (the default), so every "from the next request" below holds only
 * through identity's invalidation.
 */
describe('sessions: sign-in, CSRF, roles and revocation at two gateways', () => {
  const adminToken = `kwadm_${randomBytes(24).toString('hex')}`;
  let infra: TestInfra | undefined;
  let identity: ServiceProcess;
  let a: ServiceProcess;
  let b: ServiceProcess;
  /** SESSION_COOKIE_HOST_PREFIX=true: the cookie is `__Host-kw_session`. */
  let c: ServiceProcess;
  let nc: NatsConnection | undefined;
  let acme: CreatedTenant;
  let other: CreatedTenant;

  interface Session {
    cookie: string;
    csrf: string;
    view: SessionView;
  }

  const signInRaw = (gw: ServiceProcess, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    request<SessionView & ErrorBody>(gw.url, 'POST', '/auth/v1/session', { body, headers });

  async function signIn(gw: ServiceProcess, email: string, password: string): Promise<Session> {
    const r = await signInRaw(gw, { email, password });
    expect(r.status).toBe(200);
    const cookie = /^((?:__Host-)?kw_session=[^;]+)/.exec(r.headers.get('set-cookie') ?? '')![1]!;
    return { cookie, csrf: r.body.csrf_token, view: r.body };
  }

  /** A call with the session; the CSRF token only when asked (`csrf: true`, or a given value). */
  function call<T = Record<string, unknown>>(gw: ServiceProcess, s: Session, method: string, path: string, opts: { body?: unknown; csrf?: boolean | string; headers?: Record<string, string> } = {}): Promise<Answer<T>> {
    const headers: Record<string, string> = { cookie: s.cookie, ...opts.headers };
    if (opts.csrf === true) headers['x-csrf-token'] = s.csrf;
    else if (typeof opts.csrf === 'string') headers['x-csrf-token'] = opts.csrf;
    return request<T>(gw.url, method, path, { headers, ...(opts.body !== undefined && { body: opts.body }) });
  }

  const addMember = async (email: string, role: string, password = 'member-password') => {
    const r = await request<UserView>(a.url, 'POST', '/v1/users', { token: acme.root_key.key, body: { name: email, email, password, role } });
    expect(r.status).toBe(201);
    return r.body;
  };

  beforeAll(async () => {
    infra = await startInfra('signin_e2e');
    identity = new ServiceProcess('identity', infra.env);
    await identity.start();
    a = new ServiceProcess('gateway', { ...infra.env, KEYWAY_ADMIN_TOKEN: adminToken, GATEWAY_ID: 'gw_sessions_a', ADMIN_RATE_LIMIT_PER_MINUTE: '1000' });
    b = new ServiceProcess('gateway', { ...infra.env, KEYWAY_ADMIN_TOKEN: adminToken, GATEWAY_ID: 'gw_sessions_b', TRUST_PROXY: 'true', SIGN_IN_RATE_LIMIT_PER_MINUTE: '30' });
    c = new ServiceProcess('gateway', { ...infra.env, KEYWAY_ADMIN_TOKEN: adminToken, GATEWAY_ID: 'gw_sessions_c', SESSION_COOKIE_HOST_PREFIX: 'true' });
    await Promise.all([a.start(), b.start(), c.start()]);
    const tenant = async (name: string, email: string) => {
      const r = await request<CreatedTenant>(a.adminUrl, 'POST', '/admin/v1/tenants', { token: adminToken, body: { name, admin: { name: `${name} admin`, email, password: 'admin-password' } } });
      expect(r.status).toBe(201);
      return r.body;
    };
    acme = await tenant('Acme', 'alice@acme.test');
    other = await tenant('Other', 'bob@other.test');
    nc = await connect({ servers: infra.natsUrl });
  }, 90_000);

  afterAll(async () => {
    await nc?.close();
    await Promise.all([a, b, c, identity].map((p) => p?.kill('SIGTERM')));
    await infra?.stop();
  });

  it('signs in: a kw_session cookie, Secure, HttpOnly, SameSite=Strict, the CSRF token, no-store; GET answers the same token', async () => {
    const r = await signInRaw(a, { email: 'Alice@acme.test', password: 'admin-password' });
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    const set = r.headers.get('set-cookie')!;
    expect(set).toMatch(/^kw_session=[A-Za-z0-9_-]{43}; Max-Age=43200; Path=\/; HttpOnly; Secure; SameSite=Strict$/);
    expect(r.body).toMatchObject({ member: { id: acme.admin!.id, email: 'alice@acme.test' }, tenant: { id: acme.tenant.id, name: 'Acme' }, role: 'admin' });
    expect(r.body.csrf_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const s: Session = { cookie: set.split(';')[0]!, csrf: r.body.csrf_token, view: r.body };
    for (const gw of [a, b]) {
      const got = await call<SessionView>(gw, s, 'GET', '/auth/v1/session');
      expect(got.status).toBe(200);
      expect(got.headers.get('cache-control')).toBe('no-store');
      expect(got.body.csrf_token).toBe(s.csrf);
    }
    expect((await request(a.url, 'GET', '/auth/v1/session')).status).toBe(401);
  });

  it('an unknown email and a wrong password answer alike: status, body, and time', async () => {
    const wrong: number[] = [];
    const unknown: number[] = [];
    let wrongBody: unknown;
    let unknownBody: unknown;
    // Through B with a fresh client address each time, so the back-off stays out of it.
    for (let i = 0; i < 12; i++) {
      for (const [email, times] of [['alice@acme.test', wrong], [`nobody${i}@acme.test`, unknown]] as const) {
        const t0 = performance.now();
        const r = await signInRaw(b, { email, password: 'not the password' }, { 'x-forwarded-for': `203.0.113.${i * 2 + (times === wrong ? 0 : 1)}` });
        times.push(performance.now() - t0);
        expect(r.status).toBe(401);
        expect(r.headers.get('cache-control')).toBe('no-store');
        if (times === wrong) wrongBody = r.body;
        else unknownBody = r.body;
      }
    }
    expect(wrongBody).toEqual({ error: 'The email or the password is not right', code: 'invalid_credentials' });
    expect(unknownBody).toEqual(wrongBody);
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
    // Both pay one argon2 verification (~25–50 ms here); without the dummy hash an unknown email
    // answers in a few ms. A loaded 2-core machine is noisy: the medians stay within 2× of each other.
    const ratio = median(unknown) / median(wrong);
    expect(ratio).toBeGreaterThan(0.5);
    expect(ratio).toBeLessThan(2);
  }, 60_000);

  it('backs off per (email, client address) with 429 and Retry-After; a spoofed X-Forwarded-For is ignored without TRUST_PROXY; elsewhere the member still signs in', async () => {
    await addMember('target@acme.test', 'viewer', 'target-password');
    for (let i = 0; i < 5; i++) expect((await signInRaw(a, { email: 'target@acme.test', password: 'guess' })).status).toBe(401);
    const blocked = await signInRaw(a, { email: 'target@acme.test', password: 'guess' }, { 'x-forwarded-for': '198.51.100.7' });
    expect(blocked.status).toBe(429);
    expect(blocked.body).toMatchObject({ code: 'rate_limited', retry_after: 1 });
    expect(blocked.headers.get('retry-after')).toBe('1');
    expect((await signInRaw(b, { email: 'target@acme.test', password: 'target-password' }, { 'x-forwarded-for': '198.51.100.8' })).status).toBe(200);
  });

  it('one address trying many emails is held back too (per address, whatever the email)', async () => {
    const from = { 'x-forwarded-for': '192.0.2.77' };
    for (let i = 0; i < 30; i++) expect((await signInRaw(b, { email: `spray${i}@acme.test`, password: 'guess' }, from)).status).toBe(401);
    const r = await signInRaw(b, { email: 'spray-last@acme.test', password: 'guess' }, from);
    expect(r.status).toBe(429);
    expect(r.body).toMatchObject({ code: 'rate_limited', window: 'sign_in' });
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await signInRaw(b, { email: 'alice@acme.test', password: 'admin-password' }, { 'x-forwarded-for': '192.0.2.78' })).status).toBe(200);
  }, 60_000);

  it('credentials of members of two tenants: 409 tenant_required with both, then tenant_id', async () => {
    const r1 = await request(other.root_key.key ? a.url : '', 'POST', '/v1/users', { token: other.root_key.key, body: { name: 'Twin', email: 'twin@acme.test', password: 'twin-password', role: 'viewer' } });
    expect(r1.status).toBe(201);
    await addMember('twin@acme.test', 'viewer', 'twin-password');
    const r = await signInRaw(a, { email: 'twin@acme.test', password: 'twin-password' });
    expect(r.status).toBe(409);
    expect(r.body.code).toBe('tenant_required');
    expect((r.body as unknown as { tenants: unknown[] }).tenants).toEqual(expect.arrayContaining([{ id: acme.tenant.id, name: 'Acme' }, { id: other.tenant.id, name: 'Other' }]));
    const picked = await signInRaw(a, { email: 'twin@acme.test', password: 'twin-password', tenant_id: other.tenant.id });
    expect(picked.status).toBe(200);
    expect(picked.body.tenant.id).toBe(other.tenant.id);
  });

  it('a change without the CSRF token, or with a wrong one, is 403 csrf_failed; reads need none; a Bearer key decides alone', async () => {
    const s = await signIn(a, 'alice@acme.test', 'admin-password');
    const body = { name: 'csrf check', scopes: ['contacts:read'] };
    for (const csrf of [false, 'x'.repeat(43), s.csrf.slice(1)]) {
      const r = await call(a, s, 'POST', '/v1/keys', { body, csrf });
      expect(r.status).toBe(403);
      expect(r.body.code).toBe('csrf_failed');
    }
    expect((await call(b, s, 'DELETE', '/auth/v1/session')).body).toMatchObject({ code: 'csrf_failed' });
    expect((await call(a, s, 'GET', '/v1/keys')).status).toBe(200);
    const made = await call<IssuedKey>(a, s, 'POST', '/v1/keys', { body, csrf: true });
    expect(made.status).toBe(201);
    // A key that reads contacts only, sent with the admin's cookie: the key alone is judged.
    const r = await request(b.url, 'POST', '/v1/keys', { token: made.body.key, headers: { cookie: s.cookie, 'x-csrf-token': s.csrf }, body: { name: 'via key', scopes: [] } });
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({ code: 'insufficient_scope', required_scope: 'keys:write' });
  });

  it("tenant A's session gets 404 for tenant B's keys; a viewer cannot create a key; Keyway-Mode: test acts in test mode", async () => {
    const s = await signIn(b, 'alice@acme.test', 'admin-password');
    for (const [method, path] of [['GET', `/v1/keys/${other.root_key.id}`], ['PATCH', `/v1/keys/${other.root_key.id}`], ['POST', `/v1/keys/${other.root_key.id}/revoke`]] as const) {
      const r = await call(b, s, method, path, { csrf: true, ...(method === 'PATCH' && { body: { name: 'mine now' } }) });
      expect({ path, method, status: r.status, code: r.body.code }).toEqual({ path, method, status: 404, code: 'not_found' });
    }
    const list = await call<Page<KeyView>>(b, s, 'GET', '/v1/keys?pageSize=50');
    expect(list.body.data.map((k) => k.id)).not.toContain(other.root_key.id);

    await addMember('viewer@acme.test', 'viewer', 'viewer-password');
    const v = await signIn(a, 'viewer@acme.test', 'viewer-password');
    const refused = await call(a, v, 'POST', '/v1/keys', { body: { name: 'nope', scopes: [] }, csrf: true });
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ code: 'insufficient_scope', required_scope: 'keys:write' });
    expect((await call(a, v, 'GET', '/v1/keys')).status).toBe(200);

    const test = await call<IssuedKey>(a, s, 'POST', '/v1/keys', { body: { name: 'test mode', scopes: [] }, csrf: true, headers: { 'keyway-mode': 'test' } });
    expect(test.status).toBe(201);
    expect(test.body.environment).toBe('test');
    expect((await call(a, s, 'GET', '/v1/keys', { headers: { 'keyway-mode': 'prod' } })).status).toBe(400);
    // DELETE /v1/test-data: "a test key or a session"; a viewer lacks contacts:write.
    expect((await call(a, s, 'DELETE', '/v1/test-data', { csrf: true })).status).not.toBe(403);
    expect((await call(a, v, 'DELETE', '/v1/test-data', { csrf: true })).body).toMatchObject({ code: 'insufficient_scope' });
  });

  it('the audit actor of a change made with a session is the member', async () => {
    const s = await signIn(a, 'alice@acme.test', 'admin-password');
    const made = await call<IssuedKey>(a, s, 'POST', '/v1/keys', { body: { name: 'actor check', scopes: [] }, csrf: true });
    expect(made.status).toBe(201);
    const { jsm } = await jetStreamContext(nc!);
    await eventually(async () => {
      const m = await jsm.streams.getMessage(infra!.stream, { last_by_subj: 'keyway.keys.created' });
      const e = JSON.parse(new TextDecoder().decode(m!.data)) as { key_id: string; actor: unknown };
      expect(e.key_id).toBe(made.body.id);
      expect(e.actor).toEqual({ type: 'member', id: acme.admin!.id });
      return true;
    });
  });

  it('a removed member, or a demoted one, is refused from the next request at both gateways', async () => {
    const admin = await signIn(a, 'alice@acme.test', 'admin-password');
    const dev = await addMember('dev@acme.test', 'developer', 'dev-password');
    const gone = await addMember('gone@acme.test', 'developer', 'gone-password');
    const d = await signIn(a, 'dev@acme.test', 'dev-password');
    const g = await signIn(b, 'gone@acme.test', 'gone-password');
    // Both sessions cached at both gateways.
    for (const gw of [a, b]) {
      expect((await call(gw, d, 'POST', '/v1/keys', { body: { name: `dev ${gw.url}`, scopes: [] }, csrf: true })).status).toBe(201);
      expect((await call(gw, g, 'GET', '/v1/keys')).status).toBe(200);
    }
    expect((await call(a, admin, 'DELETE', `/v1/users/${gone.id}`, { csrf: true })).status).toBe(204);
    expect((await call(a, admin, 'PATCH', `/v1/users/${dev.id}`, { body: { role: 'viewer' }, csrf: true })).status).toBe(200);
    for (const gw of [a, b]) {
      const r = await call(gw, g, 'GET', '/v1/keys');
      expect({ status: r.status, code: r.body.code }).toEqual({ status: 401, code: 'unauthorized' });
      const demoted = await call(gw, d, 'POST', '/v1/keys', { body: { name: `dev again ${gw.url}`, scopes: [] }, csrf: true });
      expect({ status: demoted.status, required: demoted.body.required_scope }).toEqual({ status: 403, required: 'keys:write' });
      expect((await call<SessionView>(gw, d, 'GET', '/auth/v1/session')).body.role).toBe('viewer');
    }
  });

  it('no escalation over HTTP: a users:write key and a developer cannot make anyone admin or set an admin’s password', async () => {
    const usersKey = await request<IssuedKey>(a.url, 'POST', '/v1/keys', { token: acme.root_key.key, body: { name: 'users only', scopes: ['users:write'] } });
    const dev = await addMember('dev2@acme.test', 'developer', 'dev2-password');
    const d = await signIn(b, 'dev2@acme.test', 'dev2-password');
    const tries: Array<Promise<Answer>> = [
      request(a.url, 'POST', '/v1/users', { token: usersKey.body.key, body: { name: 'x', email: 'x@acme.test', password: '12345678', role: 'admin' } }),
      request(a.url, 'PATCH', `/v1/users/${dev.id}`, { token: usersKey.body.key, body: { role: 'admin' } }),
      request(a.url, 'PATCH', `/v1/users/${acme.admin!.id}`, { token: usersKey.body.key, body: { password: 'taken-over!' } }),
      request(a.url, 'PATCH', `/v1/users/${acme.admin!.id}`, { token: usersKey.body.key, body: { email: 'me@evil.test' } }),
      call(b, d, 'PATCH', `/v1/users/${dev.id}`, { body: { role: 'admin' }, csrf: true }),
    ];
    for (const r of await Promise.all(tries)) expect({ status: r.status, code: r.body.code }).toEqual({ status: 403, code: 'insufficient_scope' });
    expect((await signInRaw(a, { email: 'alice@acme.test', password: 'taken-over!' })).status).toBe(401);
  });

  it('a new password ends the member’s other sessions at both gateways; the session survives a gateway restart; sign-out ends it everywhere', async () => {
    await addMember('pw@acme.test', 'admin', 'first-password');
    const s1 = await signIn(a, 'pw@acme.test', 'first-password');
    const s2 = await signIn(b, 'pw@acme.test', 'first-password');
    for (const gw of [a, b]) expect((await call(gw, s2, 'GET', '/v1/keys')).status).toBe(200);
    const changed = await call(a, s1, 'PATCH', `/v1/users/${s1.view.member.id}`, { body: { password: 'second-password', current_password: 'first-password' }, csrf: true });
    expect(changed.status).toBe(200);
    for (const gw of [a, b]) {
      expect((await call(gw, s2, 'GET', '/v1/keys')).status).toBe(401);
      expect((await call(gw, s1, 'GET', '/v1/keys')).status).toBe(200);
    }

    await a.kill('SIGKILL');
    await a.start();
    const again = await call<SessionView>(a, s1, 'GET', '/auth/v1/session');
    expect(again.status).toBe(200);
    expect(again.body.csrf_token).toBe(s1.csrf);
    expect((await call(a, s1, 'POST', '/v1/keys', { body: { name: 'after restart', scopes: [] }, csrf: true })).status).toBe(201);

    const out = await call(b, s1, 'DELETE', '/auth/v1/session', { csrf: true });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(/^kw_session=; Max-Age=0|^kw_session=;.*Expires=Thu, 01 Jan 1970/);
    for (const gw of [a, b]) expect((await call(gw, s1, 'GET', '/v1/keys')).status).toBe(401);
  }, 60_000);

  it('the cookie is kw_session (DESIGN), or __Host-kw_session where configured; neither name stands in for the other', async () => {
    const hosted = await signInRaw(c, { email: 'alice@acme.test', password: 'admin-password' });
    expect(hosted.status).toBe(200);
    expect(hosted.headers.get('set-cookie')).toMatch(/^__Host-kw_session=[A-Za-z0-9_-]{43}; Max-Age=43200; Path=\/; HttpOnly; Secure; SameSite=Strict$/);
    const hostedId = /^__Host-kw_session=([^;]+)/.exec(hosted.headers.get('set-cookie')!)![1]!;
    const plain = await signIn(a, 'alice@acme.test', 'admin-password');
    const plainId = plain.cookie.split('=')[1]!;
    const keys = (gw: ServiceProcess, cookie: string) => request(gw.url, 'GET', '/v1/keys', { headers: { cookie } });
    // Each gateway takes its own name only: the same valid id under the other name is no session.
    expect((await keys(c, `kw_session=${hostedId}`)).body.code).toBe('missing_key');
    expect((await keys(c, `kw_session=${plainId}`)).body.code).toBe('missing_key');
    expect((await keys(a, `__Host-kw_session=${plainId}`)).body.code).toBe('missing_key');
    expect((await keys(c, `__Host-kw_session=${hostedId}`)).status).toBe(200);
    expect((await keys(a, `kw_session=${plainId}`)).status).toBe(200);
    // A plain cookie planted beside the __Host- one (first in the header, another member's) changes nothing there.
    const viewer = await addMember('shadow@acme.test', 'viewer', 'shadow-password');
    const planted = /^kw_session=([^;]+)/.exec((await signInRaw(a, { email: 'shadow@acme.test', password: 'shadow-password' })).headers.get('set-cookie')!)![1]!;
    const both = await request<SessionView>(c.url, 'GET', '/auth/v1/session', { headers: { cookie: `kw_session=${planted}; __Host-kw_session=${hostedId}` } });
    expect(both.body.member.id).toBe(acme.admin!.id);
    expect(both.body.member.id).not.toBe(viewer.id);
  });

  it('POST /auth/v1/password: a viewer changes their own password with the current one; the old one stops working, their other sessions end, this one goes on', async () => {
    const viewer = await addMember('self@acme.test', 'viewer', 'old-password');
    const from = { 'x-forwarded-for': '198.51.100.40' };
    const s1 = await signIn(b, 'self@acme.test', 'old-password');
    const s2 = await signIn(a, 'self@acme.test', 'old-password');
    for (const gw of [a, b]) expect((await call(gw, s2, 'GET', '/v1/keys')).status).toBe(200);
    const change = (body: unknown, csrf: boolean | string = true, headers: Record<string, string> = {}) => call(b, s1, 'POST', '/auth/v1/password', { body, csrf, headers: { ...from, ...headers } });

    // No session: 401. A cross-site form or fetch cannot send the CSRF header: 403 csrf_failed, as every cookie route.
    expect((await request(b.url, 'POST', '/auth/v1/password', { body: { current_password: 'old-password', new_password: 'new-password' } })).status).toBe(401);
    for (const csrf of [false, 'x'.repeat(43)]) {
      const r = await change({ current_password: 'old-password', new_password: 'new-password' }, csrf, { origin: 'https://evil.test' });
      expect({ status: r.status, code: r.body.code }).toEqual({ status: 403, code: 'csrf_failed' });
    }
    const short = await change({ current_password: 'old-password', new_password: 'short' });
    expect({ status: short.status, code: short.body.code, field: (short.body.details as Array<{ field: string }>)[0]?.field }).toEqual({ status: 400, code: 'invalid_request', field: 'new_password' });
    const wrong = await change({ current_password: 'not-it', new_password: 'new-password' });
    expect({ status: wrong.status, code: wrong.body.code }).toEqual({ status: 403, code: 'forbidden' });
    expect(wrong.headers.get('cache-control')).toBe('no-store');

    const ok = await change({ current_password: 'old-password', new_password: 'new-password' });
    expect(ok.status).toBe(204);
    for (const gw of [a, b]) {
      expect((await call(gw, s2, 'GET', '/v1/keys')).status).toBe(401);
      expect((await call(gw, s1, 'GET', '/v1/keys')).status).toBe(200);
    }
    expect((await signInRaw(b, { email: 'self@acme.test', password: 'old-password' }, { 'x-forwarded-for': '198.51.100.41' })).status).toBe(401);
    expect((await signInRaw(b, { email: 'self@acme.test', password: 'new-password' }, { 'x-forwarded-for': '198.51.100.41' })).status).toBe(200);

    const { jsm } = await jetStreamContext(nc!);
    await eventually(async () => {
      const m = await jsm.streams.getMessage(infra!.stream, { last_by_subj: 'keyway.members.updated' });
      const raw = new TextDecoder().decode(m!.data);
      const e = JSON.parse(raw) as { member_id: string; actor: unknown; data: unknown };
      expect(e.member_id).toBe(viewer.id);
      expect(e.actor).toEqual({ type: 'member', id: viewer.id });
      expect(e.data).toEqual({ password_changed: true, sessions_ended: 1 });
      expect(raw).not.toContain('new-password');
      return true;
    });
  });

  it('POST /auth/v1/password: wrong current passwords back off like sign-in (429, Retry-After), in the same run as sign-in for that email and address', async () => {
    await addMember('guessed@acme.test', 'developer', 'right-password');
    const from = { 'x-forwarded-for': '198.51.100.50' };
    const s = await signIn(b, 'guessed@acme.test', 'right-password');
    const change = (current: string) => call(b, s, 'POST', '/auth/v1/password', { body: { current_password: current, new_password: 'another-password' }, csrf: true, headers: from });
    for (let i = 0; i < 5; i++) expect((await change(`guess-${i}`)).status).toBe(403);
    const blocked = await change('right-password');
    expect(blocked.status).toBe(429);
    expect(blocked.body).toMatchObject({ code: 'rate_limited', retry_after: 1 });
    expect(blocked.headers.get('retry-after')).toBe('1');
    expect((await signInRaw(b, { email: 'guessed@acme.test', password: 'right-password' }, from)).status).toBe(429);
    // From elsewhere the member is not locked out.
    expect((await signInRaw(b, { email: 'guessed@acme.test', password: 'right-password' }, { 'x-forwarded-for': '198.51.100.51' })).status).toBe(200);
  });
});
