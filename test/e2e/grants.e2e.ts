import { randomBytes } from 'node:crypto';
import { ALL_SCOPES, grants, type CreatedTenant, type Environment, type IssuedKey, type IssuedRootKey, type Scope } from '@keyway/contracts';
import { ServiceProcess, startInfra, type TestInfra } from '@keyway/testing';
import fc from 'fast-check';
import { request } from './platform';

/**
 * The two promises an outside fuzz broke, as a property over any sequence of key commands, with
 * identity and two gateway replicas running as an operator runs them:
 *  1. right after each command's answer, every secret ever issued answers 200 at each gateway
 *     exactly when the model says it may (revoked, disabled and rotated-away secrets refused,
 *     whichever secret of the key and whichever gateway);
 *  2. a command is refused exactly when it would escalate (a scope the caller lacks, the other
 *     mode, a limit above the ceiling, the caller's own limits raised, a key holding more than the
 *     caller), and otherwise does what it says.
 * Graces are 0 or at least an hour, so no secret's validity depends on how long the test takes.
 */
const HIGH = 1_000_000;
const CEILING = { burst_per_second: 500_000_000, per_minute: 500_000_000, per_hour: 500_000_000, daily: 500_000_000 };
const LIMITS = { burst_per_second: HIGH, per_minute: HIGH, per_hour: HIGH, daily: HIGH };

interface MSecret {
  key: string;
  until: number | null;
}
interface MKey {
  id: string;
  name: string;
  env: Environment;
  scopes: Scope[];
  perMinute: number;
  enabled: boolean;
  revoked: boolean;
  secrets: MSecret[];
}

type Cmd =
  | { t: 'create'; actor: number; env: Environment | null; scopes: Scope[]; overCeiling: boolean }
  | { t: 'rotate'; actor: number; target: number; grace: 0 | 3600 | 86_400 }
  | { t: 'scopes'; actor: number; target: number; scopes: Scope[] }
  | { t: 'limit'; actor: number; target: number; perMinute: number }
  | { t: 'disable' | 'enable' | 'revoke'; actor: number; target: number };

const rot = (grace: 0 | 3600 | 86_400): Cmd => ({ t: 'rotate', actor: 0, target: 2, grace });

/** A target index; -1 is the newest key. */
const pick = (keys: MKey[], i: number): MKey => keys[i < 0 ? keys.length - 1 : i % keys.length]!;

const scopesArb = fc.subarray([...ALL_SCOPES] as Scope[]);
const idx = fc.nat(50);
/** Callers: mostly a root key (so commands get past the grants often), else any key. */
const actorArb = fc.oneof({ arbitrary: fc.constantFrom(0, 1), weight: 2 }, { arbitrary: idx, weight: 1 });
/** Targets: often the newest key, so one key sees rotate → rotate → revoke sequences. */
const targetArb = fc.oneof({ arbitrary: fc.constant(-1), weight: 2 }, { arbitrary: idx, weight: 1 });
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({ t: fc.constant('create' as const), actor: actorArb, env: fc.constantFrom<Environment | null>(null, null, 'live', 'test'), scopes: scopesArb, overCeiling: fc.oneof({ arbitrary: fc.constant(true), weight: 1 }, { arbitrary: fc.constant(false), weight: 6 }) }),
  fc.record({ t: fc.constant('rotate' as const), actor: actorArb, target: targetArb, grace: fc.constantFrom<0 | 3600 | 86_400>(0, 3600, 86_400) }),
  fc.record({ t: fc.constant('scopes' as const), actor: actorArb, target: targetArb, scopes: scopesArb }),
  fc.record({ t: fc.constant('limit' as const), actor: actorArb, target: targetArb, perMinute: fc.constantFrom(HIGH / 2, HIGH, HIGH * 2, 1_000_000_000) }),
  fc.record({ t: fc.constantFrom('disable' as const, 'enable' as const, 'revoke' as const), actor: actorArb, target: targetArb }),
);

const works = (k: MKey, s: MSecret, now: number): boolean => !k.revoked && k.enabled && (s.until === null || s.until > now);
const current = (k: MKey): MSecret => k.secrets[k.secrets.length - 1]!;
const holdsAll = (caller: MKey, scopes: readonly Scope[]): boolean => scopes.every((s) => grants(caller.scopes, s));

describe('grants and revocation at two gateways: a property over key commands', () => {
  const adminToken = `kwadm_${randomBytes(24).toString('hex')}`;
  let infra: TestInfra | undefined;
  const processes: ServiceProcess[] = [];
  let gateways: string[] = [];
  let adminUrl = '';

  beforeAll(async () => {
    infra = await startInfra('grants');
    const identity = new ServiceProcess('identity', infra.env);
    processes.push(identity);
    await identity.start();
    const gws = ['gw_grants_a', 'gw_grants_b'].map(
      (id) => new ServiceProcess('gateway', { ...infra!.env, KEYWAY_ADMIN_TOKEN: adminToken, GATEWAY_ID: id, ADMIN_RATE_LIMIT_PER_MINUTE: '100000' }),
    );
    processes.push(...gws);
    await Promise.all(gws.map((g) => g.start()));
    gateways = gws.map((g) => g.url);
    adminUrl = gws[0]!.adminUrl;
  }, 60_000);

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.kill('SIGTERM').catch(() => p.kill('SIGKILL'))));
    await infra?.stop();
  });

  const admin = <T>(method: string, path: string, body: unknown) => request<T>(adminUrl, method, path, { token: adminToken, body });

  /** A fresh tenant with a live and a test root key and a few narrower callers, as the model starts. */
  async function freshTenant(): Promise<MKey[]> {
    const t = await admin<CreatedTenant>('POST', '/admin/v1/tenants', { name: 'Grants', rate_limit_ceiling: CEILING });
    expect(t.status).toBe(201);
    const testRoot = await admin<IssuedRootKey>('POST', `/admin/v1/tenants/${t.body.tenant.id}/root-key`, { environment: 'test' });
    expect(testRoot.status).toBe(201);
    const root = (id: string, key: string, env: Environment): MKey => ({
      id, name: `root ${env}`, env, scopes: [...ALL_SCOPES], perMinute: 100, enabled: true, revoked: false, secrets: [{ key, until: null }],
    });
    const keys = [root(t.body.root_key.id, t.body.root_key.key, 'live'), root(testRoot.body.root_key.id, testRoot.body.root_key.key, 'test')];
    // Root keys run under the default limits: give the model's callers room instead.
    for (const [i, scopes] of [[0, ['keys:write']], [0, ['keys:write', 'contacts:write']], [1, ['keys:write', 'journeys:read']]] as const) {
      const made = await request<IssuedKey>(gateways[0]!, 'POST', '/v1/keys', { token: current(keys[i]!).key, body: { name: `caller ${keys.length}`, scopes, rate_limit: LIMITS } });
      expect(made.status).toBe(201);
      keys.push({ id: made.body.id, name: made.body.name, env: made.body.environment, scopes: [...scopes], perMinute: HIGH, enabled: true, revoked: false, secrets: [{ key: made.body.key, until: null }] });
    }
    return keys;
  }

  /** What the model says the command answers, and what it changes when it succeeds. */
  function expected(keys: MKey[], cmd: Cmd, now: number): { status: number; apply?: (answer: Record<string, unknown>) => void } {
    const actor = keys[cmd.actor % keys.length]!;
    if (!works(actor, current(actor), now)) return { status: 401 };
    if (!grants(actor.scopes, 'keys:write')) return { status: 403 };
    if (cmd.t === 'create') {
      const env = cmd.env ?? actor.env;
      if (env !== actor.env || !holdsAll(actor, cmd.scopes) || cmd.overCeiling) return { status: 403 };
      return {
        status: 201,
        apply: (a) => keys.push({ id: a.id as string, name: a.name as string, env, scopes: cmd.scopes, perMinute: HIGH, enabled: true, revoked: false, secrets: [{ key: a.key as string, until: null }] }),
      };
    }
    const target = pick(keys, cmd.target);
    if (target.env !== actor.env) return { status: 404 };
    if (!holdsAll(actor, target.scopes)) return { status: 403 };
    if (target.revoked) return { status: 409 };
    switch (cmd.t) {
      case 'rotate':
        return {
          status: 200,
          apply: (a) => {
            const until = now + cmd.grace * 1000;
            for (const s of target.secrets) if (s.until === null || s.until > until) s.until = until;
            target.secrets.push({ key: a.key as string, until: null });
          },
        };
      case 'scopes':
        if (!holdsAll(actor, cmd.scopes)) return { status: 403 };
        return { status: 200, apply: () => void (target.scopes = cmd.scopes) };
      case 'limit':
        if (cmd.perMinute > CEILING.per_minute) return { status: 403 };
        if (target.id === actor.id && cmd.perMinute > target.perMinute) return { status: 403 };
        return { status: 200, apply: () => void (target.perMinute = cmd.perMinute) };
      case 'disable':
      case 'enable':
        return { status: 200, apply: () => void (target.enabled = cmd.t === 'enable') };
      case 'revoke':
        return { status: 200, apply: () => void (target.revoked = true) };
    }
  }

  function send(keys: MKey[], cmd: Cmd) {
    const actor = current(keys[cmd.actor % keys.length]!).key;
    if (cmd.t === 'create') {
      const rate_limit = cmd.overCeiling ? { ...LIMITS, per_hour: 1_000_000_000 } : LIMITS;
      return request(gateways[0]!, 'POST', '/v1/keys', { token: actor, body: { name: `k${keys.length}`, scopes: cmd.scopes, rate_limit, ...(cmd.env && { environment: cmd.env }) } });
    }
    const target = pick(keys, cmd.target);
    // Commands go to either gateway; the check afterwards reads both.
    const gw = gateways[keys.length % 2]!;
    const path = `/v1/keys/${target.id}`;
    switch (cmd.t) {
      case 'rotate':
        return request(gw, 'POST', `${path}/rotate`, { token: actor, body: cmd.grace > 0 ? { grace_period_seconds: cmd.grace } : {} });
      case 'scopes':
        return request(gw, 'PATCH', path, { token: actor, body: { scopes: cmd.scopes } });
      case 'limit':
        return request(gw, 'PATCH', path, { token: actor, body: { rate_limit: { ...LIMITS, per_minute: cmd.perMinute } } });
      case 'disable':
      case 'enable':
        return request(gw, 'PATCH', path, { token: actor, body: { enabled: cmd.t === 'enable' } });
      case 'revoke':
        return request(gw, 'POST', `${path}/revoke`, { token: actor });
    }
  }

  const seen = new Map<string, number>();
  it('holds for any sequence of create, rotate, update, disable, enable and revoke', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(cmdArb, { minLength: 1, maxLength: 12 }), async (cmds) => {
        const keys = await freshTenant();
        for (const cmd of cmds) {
          const now = Date.now();
          const want = expected(keys, cmd, now);
          const got = await send(keys, cmd);
          expect({ cmd, status: got.status, body: got.body }).toEqual({ cmd, status: want.status, body: expect.anything() });
          want.apply?.(got.body);
          seen.set(`${cmd.t} ${got.status}`, (seen.get(`${cmd.t} ${got.status}`) ?? 0) + 1);
          // Every secret ever issued, at both gateways, right after the answer.
          const after = Date.now();
          const checks = keys.flatMap((k) => k.secrets.flatMap((s) => gateways.map((gw) => ({ k, s, gw }))));
          const answers = await Promise.all(checks.map((c) => request(c.gw, 'GET', '/v1/whoami', { token: c.s.key })));
          checks.forEach((c, i) => {
            const ok = works(c.k, c.s, after);
            expect({ cmd, key: c.k.name, gateway: c.gw, secret: c.s.key.slice(0, 16), status: answers[i]!.status }).toEqual({
              cmd, key: c.k.name, gateway: c.gw, secret: c.s.key.slice(0, 16), status: ok ? 200 : 401,
            });
          });
        }
      }),
      {
        // The outside probe's sequences first: rotate with a grace and use the first secret, rotate
        // again, then revoke or disable (or rotate with no grace): the first secret must stop too.
        examples: [
          [[rot(3600), rot(3600), { t: 'revoke', actor: 0, target: 2 }]],
          [[rot(3600), rot(86_400), { t: 'disable', actor: 0, target: 2 }]],
          [[rot(86_400), rot(0)]],
          [[{ t: 'create', actor: 2, env: null, scopes: [...ALL_SCOPES], overCeiling: false }, { t: 'limit', actor: 2, target: 2, perMinute: 1_000_000_000 }, { t: 'revoke', actor: 2, target: 0 }]],
        ],
        numRuns: Number(process.env.GRANTS_RUNS ?? 10),
        seed: process.env.GRANTS_SEED ? Number(process.env.GRANTS_SEED) : undefined,
        endOnFailure: true,
      },
    );
    // Both kinds of answer happened: the property was not satisfied by refusing (or allowing) everything.
    const total = (status: number) => [...seen].filter(([k]) => k.endsWith(` ${status}`)).reduce((n, [, v]) => n + v, 0);
    if (process.env.GRANTS_VERBOSE) process.stdout.write(`${JSON.stringify(Object.fromEntries(seen))}\n`);
    expect(total(200) + total(201)).toBeGreaterThan(0);
    expect(total(403)).toBeGreaterThan(0);
  }, 240_000);

  it('operator: a lowered ceiling binds existing keys at both gateways at once; a new root key revokes the old one', async () => {
    const t = await admin<CreatedTenant>('POST', '/admin/v1/tenants', { name: 'Operator', rate_limit_ceiling: CEILING });
    expect(t.status).toBe(201);
    expect(t.headers.get('cache-control')).toBe('no-store');
    const tenantId = t.body.tenant.id;
    const oldRoot = t.body.root_key.key;
    const made = await request<IssuedKey>(gateways[0]!, 'POST', '/v1/keys', { token: oldRoot, body: { name: 'busy', scopes: ['contacts:read'], rate_limit: LIMITS } });
    expect(made.status).toBe(201);
    expect(made.headers.get('cache-control')).toBe('no-store');
    expect(made.body).toMatchObject({ root: false, rate_limit: LIMITS });
    const whoami = (gw: string, key: string) => request<{ rate_limit: Record<string, number> }>(gw, 'GET', '/v1/whoami', { token: key });
    for (const gw of gateways) expect((await whoami(gw, made.body.key)).body.rate_limit.per_minute).toBe(HIGH);

    // Only the operator token reaches the admin routes; an API key (even the root key) is refused.
    expect((await request(adminUrl, 'PATCH', `/admin/v1/tenants/${tenantId}`, { token: oldRoot, body: { name: 'x' } })).status).toBe(401);
    const lowered = await admin<{ rate_limit_ceiling: Record<string, number> }>('PATCH', `/admin/v1/tenants/${tenantId}`, { rate_limit_ceiling: { per_minute: 500, burst_per_second: 10 } });
    expect(lowered.status).toBe(200);
    expect(lowered.body.rate_limit_ceiling).toMatchObject({ per_minute: 500, burst_per_second: 10, per_hour: 1_000_000 });
    // Cached at both gateways a moment ago; bound by the new ceiling from the next request.
    for (const gw of gateways) expect((await whoami(gw, made.body.key)).body.rate_limit).toMatchObject({ per_minute: 500, burst_per_second: 10 });
    // A new key on the defaults is capped too (the default burst, 60, is above this ceiling).
    const plain = await request<IssuedKey>(gateways[1]!, 'POST', '/v1/keys', { token: oldRoot, body: { name: 'plain', scopes: [] } });
    expect(plain.body.rate_limit).toEqual({ burst_per_second: 10, per_minute: 100, per_hour: 5_000, daily: 100_000 });
    const over = await request(gateways[0]!, 'POST', '/v1/keys', { token: oldRoot, body: { name: 'over', scopes: [], rate_limit: { per_minute: 501 } } });
    expect(over).toMatchObject({ status: 403, body: { code: 'forbidden' } });
    expect((await admin('PATCH', `/admin/v1/tenants/${tenantId}`, {})).status).toBe(400);
    expect((await admin('PATCH', '/admin/v1/tenants/ten_doesnotexist000000', { name: 'x' })).status).toBe(404);

    const keyList = await request<{ data: Array<{ id: string; root: boolean }> }>(gateways[1]!, 'GET', '/v1/keys', { token: oldRoot });
    expect(keyList.body.data.find((k) => k.id === t.body.root_key.id)?.root).toBe(true);

    const issued = await admin<IssuedRootKey>('POST', `/admin/v1/tenants/${tenantId}/root-key`, {});
    expect(issued.status).toBe(201);
    expect(issued.headers.get('cache-control')).toBe('no-store');
    expect(issued.body.revoked_key_ids).toEqual([t.body.root_key.id]);
    for (const gw of gateways) {
      expect((await whoami(gw, oldRoot)).body).toMatchObject({ code: 'key_revoked' });
      expect((await whoami(gw, issued.body.root_key.key)).status).toBe(200);
      // Other keys are untouched.
      expect((await whoami(gw, made.body.key)).status).toBe(200);
    }
    expect((await admin('POST', '/admin/v1/tenants/ten_doesnotexist000000/root-key', {})).status).toBe(404);
  }, 60_000);
});
