import { randomUUID } from 'node:crypto';
import { ALL_SCOPES, Rpc, type CreatedTenant, type IssuedKeyAnswer, type IssuedRootKey, type UserView } from '@keyway/contracts';
import { http, startGateway, type HttpResult, type RunningGateway } from '../../apps/gateway/test/fakes';
import { startIdentity, type IdentityHarness } from '../../apps/identity/test/identity-harness';

/**
 * Idempotency-Key through the gateway, against the real identity service (in-process), Postgres
 * and NATS: one resource however many identical POSTs race, the first answer replayed (a key's
 * secret never twice), another body refused, and keys scoped to the tenant and the mode.
 */
describe('Idempotency-Key on POST, gateway → identity', () => {
  let h: IdentityHarness;
  let gw: RunningGateway;
  /** Keys with room for the bursts below, per tenant and mode. */
  let live = '';
  let test = '';
  let otherTenant = '';
  let tenantId = '';
  const LIMITS = { burst_per_second: 1000, per_minute: 10_000, per_hour: 100_000, daily: 1_000_000 };

  const post = (key: string, path: string, body: unknown, idem?: string): Promise<HttpResult> =>
    http(gw.url, 'POST', path, { key, body, ...(idem === undefined ? {} : { headers: { 'idempotency-key': idem } }) });
  const replayed = (r: HttpResult) => r.headers.get('idempotent-replayed') === 'true';
  const body = <T>(r: HttpResult) => r.body as T;

  /** A tenant with a roomy ceiling, and a key of each mode under it with every scope. */
  async function tenant(name: string): Promise<{ id: string; live: string; test: string }> {
    const made = (await h.call<CreatedTenant>(Rpc.tenantsCreate, { ctx: h.ctx(''), body: { name, rate_limit_ceiling: LIMITS } })).response!;
    const testRoot = (await h.call<IssuedRootKey>(Rpc.tenantsRootKey, { ctx: h.ctx(''), params: { id: made.tenant.id }, body: { environment: 'test' } })).response!;
    const worker = async (root: string) => {
      const r = await post(root, '/v1/keys', { name: `worker ${randomUUID()}`, scopes: [...ALL_SCOPES], rate_limit: LIMITS });
      expect(r.status).toBe(201);
      return body<IssuedKeyAnswer>(r).key!;
    };
    return { id: made.tenant.id, live: await worker(made.root_key.key), test: await worker(testRoot.root_key.key) };
  }

  beforeAll(async () => {
    h = await startIdentity('idempotency');
    gw = await startGateway(h.infra, { RPC_TIMEOUT_MS: '5000' });
    const a = await tenant('Idempotent');
    ({ live, test } = a);
    tenantId = a.id;
    otherTenant = (await tenant('Other')).live;
  }, 60_000);
  afterAll(async () => {
    await gw?.close();
    await h?.close();
  });

  const keysNamed = async (name: string): Promise<number> =>
    ((await h.ds.query(`SELECT count(*)::int AS n FROM keys WHERE name = $1`, [name])) as Array<{ n: number }>)[0]!.n;

  it('50 concurrent identical creates make one key: each answer is the first, a replay of it (key: null) or 409; a retry replays', async () => {
    const idem = `create-${randomUUID()}`;
    const request = { name: `raced ${idem}`, scopes: ['contacts:read'] };
    const answers = await Promise.all(Array.from({ length: 50 }, () => post(live, '/v1/keys', request, idem)));

    const firsts = answers.filter((r) => r.status === 201 && !replayed(r));
    const replays = answers.filter((r) => r.status === 201 && replayed(r));
    const busy = answers.filter((r) => r.status === 409);
    expect(firsts).toHaveLength(1);
    expect(firsts.length + replays.length + busy.length).toBe(50);
    // 409 says the first call is still running (never "name taken": the race never reached the write).
    for (const r of busy) expect(body<{ code: string; error: string }>(r)).toMatchObject({ code: 'conflict', error: expect.stringMatching(/still being processed/) });
    const first = body<IssuedKeyAnswer>(firsts[0]!);
    expect(first.key).toMatch(/^kw_live_/);
    for (const r of replays) expect(body<IssuedKeyAnswer>(r)).toEqual({ ...first, key: null });
    expect(await keysNamed(request.name)).toBe(1);

    const retry = await post(live, '/v1/keys', request, idem);
    expect(retry.status).toBe(201);
    expect(replayed(retry)).toBe(true);
    expect(body<IssuedKeyAnswer>(retry)).toEqual({ ...first, key: null });
    expect(retry.headers.get('cache-control')).toBe('no-store');
    // The secret is nowhere in the record.
    const stored = (await h.ds.query(`SELECT outcome::text AS o FROM idempotency_keys WHERE key = $1`, [idem])) as Array<{ o: string }>;
    expect(stored).toHaveLength(1);
    expect(stored[0]!.o).not.toContain(first.key!.slice(-20));
  });

  it('another body with the same key is 422 idempotency_mismatch and writes nothing; the spacing and key order of JSON are not another body', async () => {
    const idem = `mismatch-${randomUUID()}`;
    const request = { name: `once ${idem}`, scopes: ['contacts:read'] };
    expect((await post(live, '/v1/keys', request, idem)).status).toBe(201);
    const other = await post(live, '/v1/keys', { ...request, name: `twice ${idem}` }, idem);
    expect(other.status).toBe(422);
    expect(body<{ code: string }>(other)).toMatchObject({ code: 'idempotency_mismatch' });
    expect(await keysNamed(`twice ${idem}`)).toBe(0);
    // The same request, keys in another order: a replay.
    const reordered = await post(live, '/v1/keys', { scopes: ['contacts:read'], name: request.name }, idem);
    expect([reordered.status, replayed(reordered)]).toEqual([201, true]);
  });

  it('the same key from another tenant or the other mode is another record', async () => {
    const idem = `scoped-${randomUUID()}`;
    const request = { name: `scoped ${idem}`, scopes: ['contacts:read'] };
    const made = await Promise.all([live, test, otherTenant].map((k) => post(k, '/v1/keys', request, idem)));
    expect(made.map((r) => [r.status, replayed(r)])).toEqual([
      [201, false],
      [201, false],
      [201, false],
    ]);
    expect(new Set(made.map((r) => body<IssuedKeyAnswer>(r).id)).size).toBe(3);
    expect(body<IssuedKeyAnswer>(made[1]!).key).toMatch(/^kw_test_/);
    expect(await keysNamed(request.name)).toBe(3);
  });

  it('a rotation replays the same key and prefix with key: null, and rotated once', async () => {
    const made = body<IssuedKeyAnswer>(await post(live, '/v1/keys', { name: `rotated ${randomUUID()}`, scopes: [] }));
    const idem = `rotate-${randomUUID()}`;
    const answers = await Promise.all(Array.from({ length: 10 }, () => post(live, `/v1/keys/${made.id}/rotate`, { grace_period_seconds: 60 }, idem)));
    const first = answers.filter((r) => r.status === 200 && !replayed(r));
    expect(first).toHaveLength(1);
    expect(answers.every((r) => r.status === 409 || (r.status === 200 && (r === first[0] || replayed(r))))).toBe(true);
    const rotated = body<IssuedKeyAnswer>(first[0]!);
    expect(rotated.prefix).not.toBe(made.prefix);
    const retry = await post(live, `/v1/keys/${made.id}/rotate`, { grace_period_seconds: 60 }, idem);
    expect([retry.status, replayed(retry)]).toEqual([200, true]);
    expect(body<IssuedKeyAnswer>(retry)).toEqual({ ...rotated, key: null });
    const events = (await h.ds.query(`SELECT count(*)::int AS n FROM events WHERE stream_id = $1 AND type = 'rotated'`, [made.id])) as Array<{ n: number }>;
    expect(events[0]!.n).toBe(1);
    expect((await http(gw.url, 'GET', '/v1/whoami', { key: rotated.key! })).status).toBe(200);

    // Revoke (and rotate/complete) take the key too: the retry is the first answer, replayed.
    const ridem = `revoke-${randomUUID()}`;
    const revoked = await post(live, `/v1/keys/${made.id}/revoke`, { reason: 'done' }, ridem);
    const again = await post(live, `/v1/keys/${made.id}/revoke`, { reason: 'done' }, ridem);
    expect([revoked.status, replayed(revoked), again.status, replayed(again)]).toEqual([200, false, 200, true]);
    expect(again.body).toEqual(revoked.body);
  });

  it('a refusal the logic decided (404) is replayed; a member is created once', async () => {
    const idem = `missing-${randomUUID()}`;
    const first = await post(live, '/v1/keys/key_doesnotexist/rotate', {}, idem);
    expect(first.status).toBe(404);
    const again = await post(live, '/v1/keys/key_doesnotexist/rotate', {}, idem);
    expect([again.status, replayed(again), again.body]).toEqual([404, true, first.body]);

    const member = { name: 'Ada', email: `ada-${randomUUID()}@example.com`, password: 'correct horse' };
    const uidem = `member-${randomUUID()}`;
    const users = await Promise.all(Array.from({ length: 5 }, () => post(live, '/v1/users', member, uidem)));
    expect(users.every((r) => r.status === 201 || r.status === 409)).toBe(true);
    const made = users.find((r) => r.status === 201 && !replayed(r))!;
    const retry = await post(live, '/v1/users', member, uidem);
    expect([retry.status, replayed(retry)]).toEqual([201, true]);
    expect(body<UserView>(retry)).toEqual(body<UserView>(made));
    const rows = (await h.ds.query(`SELECT count(*)::int AS n FROM users WHERE tenant_id = $1 AND email = $2`, [tenantId, member.email])) as Array<{ n: number }>;
    expect(rows[0]!.n).toBe(1);
  });

  it('the operator creates a tenant once per key: the replay has the same root key with key: null', async () => {
    const admin = { authorization: `Bearer ${gw.config.KEYWAY_ADMIN_TOKEN}`, 'idempotency-key': `tenant-${randomUUID()}` };
    const first = await http(gw.adminUrl, 'POST', '/admin/v1/tenants', { headers: admin, body: { name: 'Once Inc' } });
    const again = await http(gw.adminUrl, 'POST', '/admin/v1/tenants', { headers: admin, body: { name: 'Once Inc' } });
    expect([first.status, replayed(first), again.status, replayed(again)]).toEqual([201, false, 201, true]);
    const made = body<CreatedTenant>(first);
    expect(made.root_key.key).toMatch(/^kw_live_/);
    expect(body<CreatedTenant>(again)).toEqual({ ...made, root_key: { ...made.root_key, key: null } });
    expect((await http(gw.adminUrl, 'POST', '/admin/v1/tenants', { headers: admin, body: { name: 'Twice Inc' } })).status).toBe(422);
  });

  it('refuses a malformed Idempotency-Key with 400 naming the header, before anything runs', async () => {
    for (const bad of ['short', 'x'.repeat(256), 'tab\there!']) {
      const r = await post(live, '/v1/keys', { name: `bad ${randomUUID()}`, scopes: [] }, bad);
      expect([r.status, body<{ details: Array<{ field: string }> }>(r).details?.[0]?.field]).toEqual([400, 'Idempotency-Key']);
    }
  });
});
