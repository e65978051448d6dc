import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createKeywayClient, isKeywayError, KeywayApiError } from '@keyway/sdk';
import { serviceDatabaseUrl } from '@keyway/database';
import { eventually, ServiceProcess } from '@keyway/testing';
import { Client } from 'pg';
import { startGateway, type RunningGateway } from '../../apps/gateway/test/fakes';
import { startIdentity, type IdentityHarness } from '../../apps/identity/test/identity-harness';

const ROOT = join(__dirname, '..', '..');
const BIN = join(ROOT, 'packages', 'cli', 'bin', 'keyway.js');
const ADMIN_TOKEN = 'operator-token-for-tests-0123456789';
/** A whole API key, as the CLI prints it (built here from its parts, never written out whole). */
const KEY = (env: 'live' | 'test') => new RegExp(`kw_${env}_[a-z0-9]{8}_[A-Za-z0-9]{38}`);

interface Run {
  code: number | null;
  out: string;
  err: string;
}

/** The built `keyway` bin as an operator runs it: a process of its own, its env, stdin and exit code. */
function keyway(args: string[], opts: { env?: Record<string, string | undefined>; stdin?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env = Object.fromEntries(Object.entries({ PATH: process.env.PATH, ...opts.env }).filter(([, v]) => v !== undefined)) as Record<string, string>;
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err }));
    child.stdin.end(opts.stdin ?? '');
  });
}

/**
 * The operator CLI (packages/cli, spawned from its bin) and the SDK, end to end against the real
 * gateway and identity (in-process, over NATS, Postgres): what `keyway tenants …` prints and
 * exits with, that the keys it prints work, and the SDK's typed answers, errors, idempotent
 * retries and Retry-After handling against the real rate limiter.
 */
describe('keyway (operator CLI) and @keyway/sdk against the gateway and identity', () => {
  let h: IdentityHarness;
  let gw: RunningGateway;
  let env: Record<string, string>;

  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'packages', 'cli', 'dist', 'main.js'))) {
      execFileSync('npx', ['turbo', 'run', 'build', '--filter=@keyway/cli', '--output-logs=errors-only'], { cwd: ROOT, stdio: 'ignore', env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' } });
    }
    h = await startIdentity('operator_cli');
    gw = await startGateway(h.infra, { RPC_TIMEOUT_MS: '5000', KEYWAY_ADMIN_TOKEN: ADMIN_TOKEN });
    env = { KEYWAY_ADMIN_URL: gw.adminUrl, KEYWAY_ADMIN_TOKEN: ADMIN_TOKEN };
  }, 120_000);
  afterAll(async () => {
    await gw?.close();
    await h?.close();
  });

  describe('keyway tenants', () => {
    it('says which variable is missing, and exits 2, before calling anything', async () => {
      const none = await keyway(['tenants', 'list']);
      expect(none.code).toBe(2);
      expect(none.err).toContain('Set KEYWAY_ADMIN_URL (the admin API, e.g. http://127.0.0.1:3100) and KEYWAY_ADMIN_TOKEN (the operator token).');
      const noToken = await keyway(['tenants', 'list'], { env: { KEYWAY_ADMIN_URL: gw.adminUrl } });
      expect(noToken.code).toBe(2);
      expect(noToken.err).toContain('Set KEYWAY_ADMIN_TOKEN');
      expect(noToken.err).not.toContain('KEYWAY_ADMIN_URL (');
    });

    it('names the API error and its code on a wrong token, and exits 1', async () => {
      const r = await keyway(['tenants', 'list'], { env: { ...env, KEYWAY_ADMIN_TOKEN: 'not-the-token' } });
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/^keyway: Send the operator token as "Authorization: Bearer <token>" \(unauthorized, HTTP 401, request req_\w+\)/);
      expect(r.err).toContain('Check KEYWAY_ADMIN_TOKEN');
      expect(r.out).toBe('');
    });

    it('refuses a wrong command line with exit 2 and the usage hint', async () => {
      for (const args of [['tenants', 'frob'], ['tenants', 'create'], ['tenants', 'list', '--page-size', '0'], ['tenants', 'root-key'], ['tenants', 'create', '--name', 'X', '--nope']]) {
        const r = await keyway(args, { env });
        expect({ args, code: r.code }).toEqual({ args, code: 2 });
        expect(r.err).toContain('Run `keyway --help`');
      }
      const help = await keyway(['--help']);
      expect(help.code).toBe(0);
      expect(help.out).toContain('keyway tenants create --name <name>');
    });

    it('creates a tenant with its first admin (password from stdin), prints the root key once, and the key works', async () => {
      const email = `ops-${Date.now()}@acme.example`;
      const r = await keyway(['tenants', 'create', '--name', 'Acme CLI', '--admin-email', email, '--admin-name', 'Ada Admin', '--admin-password-stdin'], {
        env,
        stdin: 'correct horse battery staple\n',
      });
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/^Created tenant Acme CLI \(ten_\w+\)\./);
      expect(r.out).toContain(`Admin member: Ada Admin <${email}>`);
      expect(r.out).toContain('role admin');
      expect(r.out).toContain('It will not be shown again');
      const key = KEY('live').exec(r.out)?.[0];
      expect(key).toBeDefined();
      // The password was read, not echoed.
      expect(r.out).not.toContain('correct horse');

      const sdk = createKeywayClient({ baseUrl: gw.url, apiKey: key });
      const me = await sdk.GET('/v1/whoami');
      expect(me.prefix).toBe(key!.slice(0, 'kw_live_'.length + 8));
      expect(me.scopes).toEqual(expect.arrayContaining(['keys:write', 'users:write', 'audit:read']));
      // The admin exists with its role, and signs in with the password given on stdin.
      const members = await sdk.GET('/v1/users');
      expect(members.data.map((m) => [m.email, m.role])).toEqual([[email, 'admin']]);
      const signIn = await fetch(`${gw.url}/auth/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: 'correct horse battery staple' }) });
      expect(signIn.status).toBe(200);
    });

    it('--json prints the answer for scripts, with a generated admin password when none was given', async () => {
      const r = await keyway(['tenants', 'create', '--name', 'Beta CLI', '--admin-email', `beta-${Date.now()}@beta.example`, '--json'], { env });
      expect(r.code).toBe(0);
      const answer = JSON.parse(r.out) as { tenant: { id: string; name: string }; root_key: { key: string }; admin: { role: string }; admin_password: string };
      expect(answer.tenant.name).toBe('Beta CLI');
      expect(answer.root_key.key).toMatch(KEY('live'));
      expect(answer.admin.role).toBe('admin');
      expect(answer.admin_password).toMatch(/^[A-Za-z0-9]{20}$/);
    });

    it('answers a replayed create (same --idempotency-key) with the same tenant and no secret, saying how to get a key', async () => {
      const args = ['tenants', 'create', '--name', 'Gamma CLI', '--idempotency-key', `cli-test-${Date.now()}`];
      const first = await keyway([...args, '--json'], { env });
      const again = await keyway(args, { env });
      expect(again.code).toBe(0);
      const id = (JSON.parse(first.out) as { tenant: { id: string } }).tenant.id;
      expect(again.out).toContain(`Created tenant Gamma CLI (${id}).`);
      expect(again.out).toContain('a secret is shown once only');
      expect(again.out).toContain(`keyway tenants root-key ${id}`);
      expect(again.out).not.toMatch(KEY('live'));
    });

    it('lists the tenants newest first, a page at a time or --all', async () => {
      const all = await keyway(['tenants', 'list', '--json', '--all'], { env });
      expect(all.code).toBe(0);
      const names = (JSON.parse(all.out) as { data: Array<{ name: string }> }).data.map((t) => t.name);
      expect(names).toEqual(['Gamma CLI', 'Beta CLI', 'Acme CLI']);

      const first = await keyway(['tenants', 'list', '--page-size', '2'], { env });
      expect(first.code).toBe(0);
      const lines = first.out.trim().split('\n');
      expect(lines[0]).toMatch(/^ID\s+CREATED \(UTC\)\s+NAME$/);
      expect(lines.slice(1, 3).map((l) => l.replace(/^ten_\w+\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+/, ''))).toEqual(['Gamma CLI', 'Beta CLI']);
      const cursor = /keyway tenants list --after (\S+)\.$/.exec(lines[3]!)?.[1];
      expect(lines[3]).toMatch(/^2 of 3; next page: /);
      const next = await keyway(['tenants', 'list', '--page-size', '2', '--after', cursor!], { env });
      expect(next.out.trim().split('\n').slice(1, -1).map((l) => l.split(/\s{2,}/).pop())).toEqual(['Acme CLI']);
      expect(next.out.trim().split('\n').pop()).toBe('1 of 3.');

      // The API refuses what the CLI passes on unchecked: its 400 names the field.
      const bad = await keyway(['tenants', 'list', '--page-size', '51'], { env });
      expect(bad.code).toBe(1);
      expect(bad.err).toContain('(invalid_request, HTTP 400');
      expect(bad.err).toContain('pageSize:');
    });

    it('issues a new root key (shown once) and the old one stops; --environment test gives a test key', async () => {
      const made = JSON.parse((await keyway(['tenants', 'create', '--name', 'Delta CLI', '--json'], { env })).out) as { tenant: { id: string }; root_key: { id: string; key: string } };
      const r = await keyway(['tenants', 'root-key', made.tenant.id], { env });
      expect(r.code).toBe(0);
      expect(r.out).toContain(`Revoked the older live root key: ${made.root_key.id}.`);
      expect(r.out).toContain('It will not be shown again');
      const fresh = KEY('live').exec(r.out)![0];

      const old = await createKeywayClient({ baseUrl: gw.url, apiKey: made.root_key.key })
        .GET('/v1/whoami')
        .catch((e: unknown) => e);
      expect(isKeywayError(old, 'key_revoked')).toBe(true);
      expect(old).toMatchObject({ status: 401, requestId: expect.stringMatching(/^req_/) });
      await expect(createKeywayClient({ baseUrl: gw.url, apiKey: fresh }).GET('/v1/whoami')).resolves.toMatchObject({ tenant_id: made.tenant.id });

      const test = await keyway(['tenants', 'root-key', made.tenant.id, '--environment', 'test', '--json'], { env });
      expect((JSON.parse(test.out) as { root_key: { key: string } }).root_key.key).toMatch(KEY('test'));

      const missing = await keyway(['tenants', 'root-key', 'ten_00000000000000000000000000'], { env });
      expect(missing.code).toBe(1);
      expect(missing.err).toContain('(not_found, HTTP 404');
    });
  });

  describe('incident tools: keys find|revoke, relay status, audit verify (with the audit log as a child process)', () => {
    let audit: ServiceProcess;
    let tenantId = '';
    let root = '';
    let leaked = '';
    let leakedId = '';
    beforeAll(async () => {
      audit = new ServiceProcess('audit-log', { ...h.infra.env, LOG_LEVEL: 'warn' });
      await audit.start();
      const made = JSON.parse((await keyway(['tenants', 'create', '--name', 'Incident CLI', '--json'], { env })).out) as { tenant: { id: string }; root_key: { key: string } };
      tenantId = made.tenant.id;
      root = made.root_key.key;
      const key = await createKeywayClient({ baseUrl: gw.url, apiKey: root }).POST('/v1/keys', { body: { name: 'billing sync', scopes: ['contacts:read'] } });
      leaked = key.key!;
      leakedId = key.id;
    }, 60_000);
    afterAll(async () => {
      await audit?.kill('SIGTERM');
    });
    const prefixOf = (key: string) => key.slice(0, 'kw_live_'.length + 8);

    it('keys find: the key a prefix names, in any tenant, never its secret; a whole key is cut to its prefix; none is exit 1', async () => {
      const r = await keyway(['keys', 'find', prefixOf(leaked)], { env });
      expect([r.code, r.err]).toEqual([0, '']);
      expect(r.out).toContain(`Key ${leakedId} (${prefixOf(leaked)}): active`);
      expect(r.out).toMatch(new RegExp(`tenant: +Incident CLI \\(${tenantId}\\)`));
      expect(r.out).toMatch(/scopes: +contacts:read/);
      expect(r.out).toMatch(/last used: +never/);
      const json = JSON.parse((await keyway(['keys', 'find', prefixOf(leaked), '--json'], { env })).out) as { data: Array<Record<string, unknown>> };
      expect(json.data).toEqual([expect.objectContaining({ id: leakedId, tenant: { id: tenantId, name: 'Incident CLI' }, status: 'active', scopes: ['contacts:read'], root: false })]);
      expect(Object.keys(json.data[0]!).sort()).toEqual(['created_at', 'environment', 'id', 'last_used_at', 'name', 'prefix', 'root', 'scopes', 'status', 'tenant']);

      const whole = await keyway(['keys', 'find', leaked], { env });
      expect(whole.code).toBe(0);
      expect(whole.err).toContain(`only its prefix ${prefixOf(leaked)} is sent`);
      expect(whole.out).not.toContain(leaked);

      const none = await keyway(['keys', 'find', 'kw_live_zzzzzzzz'], { env });
      expect([none.code, none.err]).toEqual([1, 'keyway: no key has the prefix kw_live_zzzzzzzz.\n']);
      const wrong = await keyway(['keys', 'find', 'kw_prod_abc'], { env });
      expect(wrong.code).toBe(2);
    });

    it('keys revoke: refused without --reason; with it the key stops at once (the gateway had it cached), and again is nothing to do', async () => {
      const sdk = createKeywayClient({ baseUrl: gw.url, apiKey: leaked, retries: 0 });
      await expect(sdk.GET('/v1/whoami')).resolves.toMatchObject({ api_key_id: leakedId });
      for (const args of [['keys', 'revoke', prefixOf(leaked)], ['keys', 'revoke', prefixOf(leaked), '--reason', '  ']]) {
        const refused = await keyway(args, { env });
        expect([refused.code, refused.err]).toEqual([2, expect.stringContaining('keys revoke needs --reason <why>')]);
      }
      await expect(sdk.GET('/v1/whoami')).resolves.toMatchObject({ api_key_id: leakedId });

      const r = await keyway(['keys', 'revoke', prefixOf(leaked), '--reason', 'leaked'], { env });
      expect([r.code, r.err]).toEqual([0, '']);
      expect(r.out).toContain(`Revoked key ${leakedId} (${prefixOf(leaked)}, "billing sync") of tenant Incident CLI (${tenantId}).`);
      expect(r.out).toContain('reason: leaked');
      // Answered only once every gateway dropped it: the very next call is refused.
      expect(await sdk.GET('/v1/whoami').catch((e: unknown) => e)).toMatchObject({ status: 401, code: 'key_revoked' });

      const again = await keyway(['keys', 'revoke', prefixOf(leaked), '--reason', 'leaked'], { env });
      expect(again.code).toBe(0);
      expect(again.out).toContain(`Key ${leakedId} (${prefixOf(leaked)}): revoked`);
      expect(again.out).toContain('Already revoked: nothing to do.');
      expect((await keyway(['keys', 'revoke', 'kw_live_zzzzzzzz', '--reason', 'leaked'], { env })).code).toBe(1);
    });

    it("the tenant's trail records the operator: the revoke with its reason, a root key issued, the tenant renamed and re-limited", async () => {
      const admin = createKeywayClient({ baseUrl: gw.adminUrl, apiKey: ADMIN_TOKEN });
      await admin.PATCH('/admin/v1/tenants/{id}', { params: { path: { id: tenantId } }, body: { name: 'Incident CLI renamed', rate_limit_ceiling: { per_minute: 5_000 } } });
      const issued = JSON.parse((await keyway(['tenants', 'root-key', tenantId, '--json'], { env })).out) as { root_key: { id: string; key: string } };
      const reader = createKeywayClient({ baseUrl: gw.url, apiKey: issued.root_key.key });
      type Entry = { type: string; actor: { type: string; id: string }; key_id: string | null; changes: unknown };
      const trail = await eventually(async () => {
        const page = (await reader.GET('/v1/audit-events', { params: { query: { actor_type: 'operator', pageSize: 50 } } })) as unknown as { data: Entry[] };
        const types = page.data.map((e) => e.type);
        return ['revoked', 'created', 'tenant.updated'].every((t) => types.includes(t)) ? page.data : undefined;
        // Every 300 ms: within the root key's 100 calls a minute.
      }, 20_000, 300);
      const revoked = trail.find((e) => e.type === 'revoked' && e.key_id === leakedId);
      expect(revoked).toMatchObject({ actor: { type: 'operator', id: 'operator' } });
      expect(JSON.stringify(revoked!.changes)).toContain('leaked');
      expect(trail.find((e) => e.type === 'created' && e.key_id === issued.root_key.id)).toMatchObject({ actor: { type: 'operator', id: 'operator' } });
      const updated = trail.find((e) => e.type === 'tenant.updated');
      expect(updated).toMatchObject({ actor: { type: 'operator', id: 'operator' }, key_id: null });
      expect(JSON.stringify(updated!.changes)).toContain('Incident CLI renamed');
      // The operator's token is nowhere in what the tenant can read.
      expect(JSON.stringify(trail)).not.toContain(ADMIN_TOKEN);
    });

    it('relay status: each outbox relay, its backlog and lag, and the session that leads', async () => {
      const r = await keyway(['relay', 'status'], { env });
      expect([r.code, r.err]).toEqual([0, '']);
      const lines = r.out.trim().split('\n');
      expect(lines[0]).toMatch(/^RELAY\s+BACKLOG\s+OLDEST WAITING\s+LAG\s+LEADER$/);
      expect(lines.slice(1, 3).map((l) => l.split(/\s+/)[0])).toEqual(['jetstream', 'members']);
      expect(lines[1]).toMatch(/session pid \d+/);
      expect(lines[3]).toMatch(/^Answered by identity replica /);
      const json = JSON.parse((await keyway(['relay', 'status', '--json'], { env })).out) as { relays: Array<{ name: string; backlog: number; lag_seconds: number; leader: unknown }> };
      for (const relay of json.relays) expect(relay).toMatchObject({ backlog: expect.any(Number), lag_seconds: expect.any(Number), leader: expect.objectContaining({ pid: expect.any(Number) }) });

      // A backlog shows: the members relay's checkpoint gone (put back after), its rows count as waiting.
      const saved = (await h.ds.query(`SELECT name, last_tx, last_position FROM relay_checkpoints WHERE name = 'members'`)) as Array<{ name: string; last_tx: string; last_position: string }>;
      expect(saved).toHaveLength(1);
      await h.ds.query(`DELETE FROM relay_checkpoints WHERE name = 'members'`);
      try {
        const behind = JSON.parse((await keyway(['relay', 'status', '--json'], { env })).out) as { relays: Array<{ name: string; backlog: number; oldest_unpublished_at: string | null }> };
        expect(behind.relays.find((x) => x.name === 'members')!.backlog).toBeGreaterThan(0);
      } finally {
        await h.ds.query(`INSERT INTO relay_checkpoints (name, last_tx, last_position) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`, [saved[0]!.name, saved[0]!.last_tx, saved[0]!.last_position]);
      }
    });

    it('audit verify: exit 0 on an intact trail, 1 once a row is edited', async () => {
      const ok = await keyway(['audit', 'verify', '--tenant', tenantId], { env });
      expect([ok.code, ok.err]).toEqual([0, '']);
      expect(ok.out).toMatch(new RegExp(`^The audit trail of ${tenantId} is verified: \\d+ entries, head [0-9a-f]+\\.`));
      expect((await keyway(['audit', 'verify'], { env })).code).toBe(2);
      // A tenant that does not exist is not an empty trail "verified".
      const unknown = await keyway(['audit', 'verify', '--tenant', 'ten_00000000000000000000000000'], { env });
      expect([unknown.code, unknown.out]).toEqual([1, '']);
      expect(unknown.err).toContain('(not_found, HTTP 404');

      const pg = new Client({ connectionString: serviceDatabaseUrl(h.infra.databaseUrl, 'audit-log') });
      await pg.connect();
      try {
        await pg.query(`UPDATE audit_events SET actor_id = 'someone-else' WHERE id = (SELECT id FROM audit_events WHERE tenant_id = $1 AND type = 'revoked' LIMIT 1)`, [tenantId]);
      } finally {
        await pg.end();
      }
      const bad = await keyway(['audit', 'verify', '--tenant', tenantId], { env });
      expect(bad.code).toBe(1);
      expect(bad.out).toContain(`The audit trail of ${tenantId} is NOT verified`);
    });
  });

  describe('@keyway/sdk', () => {
    let root = '';
    beforeAll(async () => {
      const made = await createKeywayClient({ baseUrl: gw.adminUrl, apiKey: ADMIN_TOKEN }).POST('/admin/v1/tenants', { body: { name: 'SDK tenant' } });
      root = made.root_key.key!;
    });

    it('answers typed bodies and turns refusals into KeywayApiError with the code and the extras', async () => {
      const sdk = createKeywayClient({ baseUrl: gw.url, apiKey: root });
      const made = await sdk.POST('/v1/keys', { body: { name: 'reader', scopes: ['contacts:read'] } });
      expect(made.key).toMatch(KEY('live'));
      const reader = createKeywayClient({ baseUrl: gw.url, apiKey: made.key! });
      const err = (await reader.POST('/v1/keys', { body: { name: 'escalate', scopes: ['keys:write'] } }).catch((e: unknown) => e)) as KeywayApiError;
      expect(err).toBeInstanceOf(KeywayApiError);
      expect(err).toMatchObject({ status: 403, code: 'insufficient_scope', requiredScope: 'keys:write' });
      const invalid = (await sdk.POST('/v1/keys', { body: { name: '', scopes: ['contacts:read'] } }).catch((e: unknown) => e)) as KeywayApiError;
      expect(invalid).toMatchObject({ status: 400, code: 'invalid_request' });
      expect(invalid.details?.map((d) => d.field)).toContain('name');
      await expect(sdk.GET('/v1/keys/{id}', { params: { path: { id: 'key_00000000000000000000000000' } } })).rejects.toMatchObject({ code: 'not_found', status: 404 });
    });

    it('sends one Idempotency-Key per call: the same call twice with a key of its own makes one key, the replay without its secret', async () => {
      const sdk = createKeywayClient({ baseUrl: gw.url, apiKey: root });
      const idem = `sdk-e2e-${Date.now()}`;
      const first = await sdk.raw.POST('/v1/keys', { body: { name: 'once', scopes: ['contacts:read'] }, params: { header: { 'Idempotency-Key': idem } } });
      const again = await sdk.raw.POST('/v1/keys', { body: { name: 'once', scopes: ['contacts:read'] }, params: { header: { 'Idempotency-Key': idem } } });
      expect(first.data?.key).toMatch(KEY('live'));
      expect(again.response.headers.get('idempotent-replayed')).toBe('true');
      expect(again.data).toMatchObject({ id: first.data!.id, prefix: first.data!.prefix, key: null });
      const page = await sdk.GET('/v1/keys', { params: { query: { pageSize: 50 } } });
      expect(page.data.filter((k) => k.name === 'once')).toHaveLength(1);
    });

    it("waits out the real limiter's Retry-After and succeeds; without retries the 429 comes back typed", async () => {
      const sdk = createKeywayClient({ baseUrl: gw.url, apiKey: root });
      const slow = (await sdk.POST('/v1/keys', { body: { name: 'one a second', scopes: ['contacts:read'], rate_limit: { burst_per_second: 1 } } })).key!;
      const noRetry = createKeywayClient({ baseUrl: gw.url, apiKey: slow, retries: 0 });
      const retrying = createKeywayClient({ baseUrl: gw.url, apiKey: slow });
      await noRetry.GET('/v1/whoami');
      const limited = (await noRetry.GET('/v1/whoami').catch((e: unknown) => e)) as KeywayApiError;
      expect(limited).toMatchObject({ status: 429, code: 'rate_limited', window: 'burst_per_second' });
      expect(limited.retryAfter).toBeGreaterThanOrEqual(1);
      await expect(retrying.GET('/v1/whoami')).resolves.toMatchObject({ prefix: slow.slice(0, 16) });
    });
  });
});
