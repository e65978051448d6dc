import { createHash, randomBytes } from 'node:crypto';
import {
  MEMBER_EVENT_SUBJECTS,
  parseMemberEvent,
  ROLE_SCOPES,
  Rpc,
  SESSION_ABSOLUTE_MS,
  SESSION_IDLE_MS,
  type CreatedTenant,
  type ErrorBody,
  type MemberEvent,
  type RequestContext,
  type SessionReply,
  type UserView,
} from '@keyway/contracts';
import { jetStreamContext } from '@keyway/messaging';
import { eventually } from '@keyway/testing';
import { startIdentity, type IdentityHarness } from '../../test/identity-harness';
import { SessionClock } from './session.clock';
import { SessionsService } from './sessions.service';

const newHash = () => createHash('sha256').update(randomBytes(32)).digest('hex');

describe('identity: members, roles and sessions', () => {
  let h: IdentityHarness;
  let clock: SessionClock;
  let at = Date.parse('2026-06-01T09:00:00Z');
  const operator = (h: IdentityHarness) => ({ ...h.ctx(''), actor: { type: 'operator' as const, id: 'op' } });
  const tenantWithAdmin = async (name: string, email: string, password = 'correct horse') =>
    (await h.call<CreatedTenant>(Rpc.tenantsCreate, { ctx: operator(h), body: { name, admin: { name: `${name} admin`, email, password } } })).response!;
  const signIn = (body: Record<string, unknown>, client_address = '10.0.0.1') =>
    h.call<SessionReply>(Rpc.sessionsCreate, { client_address, session_hash: newHash(), ...body });
  const asKey = (tenantId: string, scopes: string[]): RequestContext => ({ ...h.ctx(tenantId), scopes });
  const asMember = (tenantId: string, id: string, role: keyof typeof ROLE_SCOPES, session_hash?: string): RequestContext => ({
    ...h.ctx(tenantId),
    actor: { type: 'member', id },
    scopes: [...ROLE_SCOPES[role]],
    ...(session_hash && { session_hash }),
  });
  const addMember = async (tenantId: string, email: string, role: string, password = 'password-1') =>
    (await h.call<UserView>(Rpc.usersCreate, { ctx: h.ctx(tenantId), body: { name: email, email, password, role } })).response!;

  beforeAll(async () => {
    h = await startIdentity('member_sessions');
    clock = h.app.get(SessionClock);
    jest.spyOn(clock, 'now').mockImplementation(() => new Date(at));
  });
  afterAll(() => h.close());

  it('a tenant made with an admin: the member can sign in; the hash of the session is all that is stored', async () => {
    const t = await tenantWithAdmin('Boot', 'boot@example.com');
    expect(t.admin).toMatchObject({ email: 'boot@example.com', role: 'admin' });
    const hash = newHash();
    const r = await h.call<SessionReply>(Rpc.sessionsCreate, { email: 'BOOT@example.com', password: 'correct horse', client_address: '10.0.0.9', session_hash: hash });
    expect(r.response!.record).toMatchObject({ member_id: t.admin!.id, tenant_id: t.tenant.id, role: 'admin', tenant_name: 'Boot' });
    const [row] = (await h.ds.query(`SELECT * FROM sessions WHERE member_id = $1`, [t.admin!.id])) as Array<Record<string, unknown>>;
    expect(row!.hash).toBe(hash);
    const [pw] = (await h.ds.query(`SELECT password_hash FROM users WHERE id = $1`, [t.admin!.id])) as Array<{ password_hash: string }>;
    expect(pw!.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  });

  it('an unknown email and a wrong password get the same invalid_credentials', async () => {
    await tenantWithAdmin('Alike', 'alike@example.com');
    const wrong = await signIn({ email: 'alike@example.com', password: 'not it at all' }, '10.1.0.1');
    const unknown = await signIn({ email: 'nobody@example.com', password: 'not it at all' }, '10.1.0.1');
    expect(wrong.err).toEqual(unknown.err);
    expect(wrong.err).toMatchObject({ code: 'invalid_credentials' });
  });

  it('backs off per (email, client address) with growing waits; another address is not locked out', async () => {
    await tenantWithAdmin('Brute', 'brute@example.com');
    const guess = (addr = '10.2.0.1') => signIn({ email: 'brute@example.com', password: 'guess-guess' }, addr);
    for (let i = 0; i < 5; i++) expect((await guess()).err?.code).toBe('invalid_credentials');
    const blocked = await guess();
    expect(blocked.err).toMatchObject({ code: 'rate_limited', retry_after: 1 });
    // Even the right password waits its turn from that address…
    expect((await signIn({ email: 'brute@example.com', password: 'correct horse' }, '10.2.0.1')).err?.code).toBe('rate_limited');
    // …and the member signs in from elsewhere.
    expect((await signIn({ email: 'brute@example.com', password: 'correct horse' }, '10.2.0.2')).response?.record).toBeTruthy();
    at += 1_000;
    expect((await guess()).err?.code).toBe('invalid_credentials');
    const longer = await guess();
    expect(longer.err).toMatchObject({ code: 'rate_limited', retry_after: 2 });
    at += 2_000;
    expect((await signIn({ email: 'brute@example.com', password: 'correct horse' }, '10.2.0.1')).response?.record).toBeTruthy();
    // A success forgets the run.
    expect((await guess()).err?.code).toBe('invalid_credentials');
  });

  it('parallel guesses queue on the attempt row: no more than the free ones get checked', async () => {
    await tenantWithAdmin('Burst', 'burst@example.com');
    const all = await Promise.all(Array.from({ length: 12 }, () => signIn({ email: 'burst@example.com', password: 'guess-guess' }, '10.3.0.1')));
    const codes = all.map((r) => r.err?.code);
    expect(codes.filter((c) => c === 'invalid_credentials')).toHaveLength(5);
    expect(codes.filter((c) => c === 'rate_limited')).toHaveLength(7);
  });

  it('credentials of members of two tenants: 409 tenant_required listing both, then tenant_id picks one', async () => {
    const a = await tenantWithAdmin('Twin A', 'twin@example.com', 'same password');
    const b = await tenantWithAdmin('Twin B', 'twin@example.com', 'same password');
    const r = await signIn({ email: 'twin@example.com', password: 'same password' });
    expect(r.err).toMatchObject({ code: 'tenant_required' });
    expect((r.err as ErrorBody & { tenants: unknown[] }).tenants).toEqual(
      expect.arrayContaining([
        { id: a.tenant.id, name: 'Twin A' },
        { id: b.tenant.id, name: 'Twin B' },
      ]),
    );
    expect((await signIn({ email: 'twin@example.com', password: 'same password', tenant_id: b.tenant.id })).response!.record!.tenant_id).toBe(b.tenant.id);
  });

  it('a session ends 30 minutes after its last use, and 12 hours after sign-in however used', async () => {
    await tenantWithAdmin('Clock', 'clock@example.com');
    const hash = newHash();
    expect((await signIn({ email: 'clock@example.com', password: 'correct horse', session_hash: hash })).response!.record).toBeTruthy();
    const verify = async () => (await h.call<SessionReply>(Rpc.sessionsVerify, { session_hash: hash })).response!.record;
    const start = at;
    // Used every 29 minutes: the idle end slides; the absolute one does not.
    while (at + 29 * 60_000 < start + SESSION_ABSOLUTE_MS) {
      at += 29 * 60_000;
      expect(await verify()).not.toBeNull();
    }
    at = start + SESSION_ABSOLUTE_MS;
    expect(await verify()).toBeNull();

    const idle = newHash();
    await signIn({ email: 'clock@example.com', password: 'correct horse', session_hash: idle });
    at += SESSION_IDLE_MS - 1;
    expect((await h.call<SessionReply>(Rpc.sessionsVerify, { session_hash: idle })).response!.record).not.toBeNull();
    at += SESSION_IDLE_MS;
    expect((await h.call<SessionReply>(Rpc.sessionsVerify, { session_hash: idle })).response!.record).toBeNull();
    expect(await h.ds.query(`SELECT 1 FROM sessions WHERE hash = $1`, [idle])).toHaveLength(0);

    // One never looked up again is swept.
    const forgotten = newHash();
    await signIn({ email: 'clock@example.com', password: 'correct horse', session_hash: forgotten });
    const sessions = h.app.get(SessionsService);
    await sessions.sweep();
    expect(await h.ds.query(`SELECT 1 FROM sessions WHERE hash = $1`, [forgotten])).toHaveLength(1);
    at += SESSION_IDLE_MS;
    await sessions.sweep();
    expect(await h.ds.query(`SELECT 1 FROM sessions WHERE hash = $1`, [forgotten])).toHaveLength(0);
  });

  it('no escalation: a users:write key or a developer cannot make anyone admin, nor set an admin’s email or password', async () => {
    const t = await tenantWithAdmin('Escalate', 'boss@example.com');
    const tid = t.tenant.id;
    const dev = await addMember(tid, 'dev@example.com', 'developer');
    const usersKey = asKey(tid, ['users:write', 'users:read']);
    const attempts: Array<[string, string, unknown]> = [
      ['key creates an admin', Rpc.usersCreate, { ctx: usersKey, body: { name: 'x', email: 'x@example.com', password: '12345678', role: 'admin' } }],
      ['key promotes the developer', Rpc.usersUpdate, { ctx: usersKey, params: { id: dev.id }, body: { role: 'admin' } }],
      ['key sets the admin password', Rpc.usersUpdate, { ctx: usersKey, params: { id: t.admin!.id }, body: { password: 'taken-over' } }],
      ['key sets the admin email', Rpc.usersUpdate, { ctx: usersKey, params: { id: t.admin!.id }, body: { email: 'mine@example.com' } }],
      ['key removes the admin', Rpc.usersDelete, { ctx: usersKey, params: { id: t.admin!.id } }],
      ['developer promotes themselves', Rpc.usersUpdate, { ctx: asMember(tid, dev.id, 'developer'), params: { id: dev.id }, body: { role: 'admin' } }],
      ['developer sets the admin password', Rpc.usersUpdate, { ctx: asMember(tid, dev.id, 'developer'), params: { id: t.admin!.id }, body: { password: 'taken-over' } }],
      ['developer creates an admin', Rpc.usersCreate, { ctx: asMember(tid, dev.id, 'developer'), body: { name: 'y', email: 'y@example.com', password: '12345678', role: 'admin' } }],
    ];
    for (const [name, subject, data] of attempts) {
      const r = await h.call(subject, data);
      expect({ name, code: r.err?.code }).toEqual({ name, code: 'insufficient_scope' });
      expect((r.err as { required_scope?: string }).required_scope).toMatch(/:(read|write)$/);
    }
    const users = (await h.ds.query(`SELECT email, role FROM users WHERE tenant_id = $1 ORDER BY email`, [tid])) as unknown[];
    expect(users).toEqual([
      { email: 'boss@example.com', role: 'admin' },
      { email: 'dev@example.com', role: 'developer' },
    ]);
    // Who holds every scope may: the admin makes the developer an admin.
    expect((await h.call<UserView>(Rpc.usersUpdate, { ctx: asMember(tid, t.admin!.id, 'admin'), params: { id: dev.id }, body: { role: 'admin' } })).response!.role).toBe('admin');
  });

  it('the last admin can be neither demoted nor removed, also when two try at once', async () => {
    const t = await tenantWithAdmin('Last', 'last@example.com');
    const tid = t.tenant.id;
    expect((await h.call(Rpc.usersUpdate, { ctx: h.ctx(tid), params: { id: t.admin!.id }, body: { role: 'viewer' } })).err?.code).toBe('conflict');
    expect((await h.call(Rpc.usersDelete, { ctx: h.ctx(tid), params: { id: t.admin!.id } })).err?.code).toBe('conflict');
    for (let round = 0; round < 3; round++) {
      const second = await addMember(tid, `second${round}@example.com`, 'admin');
      const admins = [t.admin!.id, second.id];
      // One demoted and one removed at once: exactly one may go through.
      const [a, b] = await Promise.all([
        h.call(Rpc.usersUpdate, { ctx: h.ctx(tid), params: { id: admins[round % 2]! }, body: { role: 'developer' } }),
        h.call(Rpc.usersDelete, { ctx: h.ctx(tid), params: { id: admins[(round + 1) % 2]! } }),
      ]);
      expect([a.err?.code, b.err?.code].filter((c) => c === 'conflict')).toHaveLength(1);
      const left = (await h.ds.query(`SELECT id FROM users WHERE tenant_id = $1 AND role = 'admin'`, [tid])) as Array<{ id: string }>;
      expect(left).toHaveLength(1);
      t.admin!.id = left[0]!.id;
    }
  });

  it("a member's own new password needs the current one and ends their other sessions, not this one", async () => {
    const t = await tenantWithAdmin('Self', 'self@example.com');
    const tid = t.tenant.id;
    const me = await addMember(tid, 'me@example.com', 'viewer', 'old password');
    const mine = newHash();
    const other = newHash();
    await signIn({ email: 'me@example.com', password: 'old password', session_hash: mine });
    await signIn({ email: 'me@example.com', password: 'old password', session_hash: other });
    const ctx = asMember(tid, me.id, 'viewer', mine);
    expect((await h.call(Rpc.usersUpdate, { ctx, params: { id: me.id }, body: { password: 'new password' } })).err).toMatchObject({ code: 'invalid_request', details: [{ field: 'current_password' }] });
    expect((await h.call(Rpc.usersUpdate, { ctx, params: { id: me.id }, body: { password: 'new password', current_password: 'wrong one' } })).err?.code).toBe('forbidden');
    expect((await h.call(Rpc.usersUpdate, { ctx, params: { id: me.id }, body: { password: 'new password', current_password: 'old password' } })).response).toMatchObject({ id: me.id });
    const verify = async (hash: string) => (await h.call<SessionReply>(Rpc.sessionsVerify, { session_hash: hash })).response!.record;
    expect(await verify(mine)).not.toBeNull();
    expect(await verify(other)).toBeNull();
    // An admin resetting it ends them all.
    await h.call(Rpc.usersUpdate, { ctx: asMember(tid, t.admin!.id, 'admin'), params: { id: me.id }, body: { password: 'reset by admin' } });
    expect(await verify(mine)).toBeNull();
  });

  it('member events reach KEYWAY through the outbox, without a password, hash or session', async () => {
    const t = await tenantWithAdmin('Events', 'events@example.com', 'secret-pass-1');
    const hash = newHash();
    await signIn({ email: 'events@example.com', password: 'secret-pass-1', session_hash: hash });
    await signIn({ email: 'events@example.com', password: 'wrong-pass-1' }, '10.9.9.9');
    const m = await addMember(t.tenant.id, 'ev2@example.com', 'viewer', 'secret-pass-2');
    await h.call(Rpc.usersUpdate, { ctx: h.ctx(t.tenant.id), params: { id: m.id }, body: { role: 'developer', password: 'secret-pass-3' } });
    await h.call(Rpc.usersDelete, { ctx: h.ctx(t.tenant.id), params: { id: m.id } });
    const { jsm } = await jetStreamContext(h.nc);
    const seen: MemberEvent[] = [];
    // Read on from where the last look stopped (the relay may lag on a loaded machine).
    let next = 1;
    await eventually(async () => {
      const info = await jsm.streams.info(h.infra.stream);
      expect(info.config.subjects).toEqual(expect.arrayContaining(MEMBER_EVENT_SUBJECTS));
      for (let seq = next; seq <= info.state.last_seq; seq = ++next) {
        const msg = await jsm.streams.getMessage(h.infra.stream, { seq }).catch(() => undefined);
        if (msg?.subject.startsWith('keyway.members.')) {
          const text = new TextDecoder().decode(msg.data);
          for (const secret of ['secret-pass', 'argon2', hash, 'wrong-pass']) expect(text).not.toContain(secret);
          const e = parseMemberEvent(JSON.parse(text));
          if (e.tenant_id === t.tenant.id) seen.push(e);
        }
      }
      expect(seen.map((e) => e.type).sort()).toEqual(['created', 'created', 'deleted', 'sign_in_failed', 'signed_in', 'updated']);
      return true;
    }, 30_000);
    expect(seen.find((e) => e.type === 'updated')!.data).toEqual({ role: 'developer', password_changed: true, sessions_ended: 0 });
    expect(seen.find((e) => e.type === 'sign_in_failed')).toMatchObject({ data: { client_address: '10.9.9.9' }, actor: { type: 'system', id: 'sign-in' } });
    expect(seen.find((e) => e.type === 'signed_in')!.actor).toEqual({ type: 'member', id: t.admin!.id });
  });
});
