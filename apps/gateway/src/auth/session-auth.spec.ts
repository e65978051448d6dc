import { ROLE_SCOPES, type SessionRecord } from '@keyway/contracts';
import type { NatsLiveness } from '../nats/liveness';
import type { RpcClient } from '../nats/rpc-client';
import { csrfMatches, csrfToken, mintSessionId, SessionAuth, sessionHash } from './session-auth';

const T0 = Date.parse('2026-06-01T09:00:00Z');
const MIN = 60_000;

/** Identity as the gateway sees it: a record per hash, and how often it was asked. */
function fakeIdentity(records: Map<string, SessionRecord>) {
  const calls: string[] = [];
  const rpc = {
    call: async (_subject: string, data: { session_hash: string }) => {
      calls.push(data.session_hash);
      return { ok: true as const, response: { record: records.get(data.session_hash) ?? null } };
    },
  } as unknown as RpcClient;
  const liveness = { trusted: () => true, isConnected: () => true } as unknown as NatsLiveness;
  return { rpc, liveness, calls };
}

const record = (over: Partial<SessionRecord> = {}): SessionRecord => ({
  member_id: 'usr_a',
  tenant_id: 'ten_a',
  role: 'developer',
  name: 'A',
  email: 'a@example.com',
  tenant_name: 'Acme',
  idle_expires_at: new Date(T0 + 30 * MIN).toISOString(),
  expires_at: new Date(T0 + 12 * 60 * MIN).toISOString(),
  ...over,
});

describe('SessionAuth (the gateway side of sessions)', () => {
  it('caches for its TTL, never past the idle or absolute end, then asks identity again', async () => {
    const id = mintSessionId();
    const records = new Map([[sessionHash(id), record({ idle_expires_at: new Date(T0 + 10_000).toISOString() })]]);
    const f = fakeIdentity(records);
    const auth = new SessionAuth(f.rpc, f.liveness, 30_000, 5_000, 100);
    let now = T0;
    auth.now = () => now;
    await auth.authenticate(id);
    now += 9_000;
    await auth.authenticate(id);
    expect(f.calls).toHaveLength(1);
    // Past the idle end identity knew of: asked again (it may have slid, or ended).
    now += 2_000;
    records.delete(sessionHash(id));
    await expect(auth.authenticate(id)).rejects.toMatchObject({ code: 'unauthorized' });
    expect(f.calls).toHaveLength(2);
  });

  it('drops every session of a member on invalidation; another member keeps theirs', async () => {
    const [mine, other] = [mintSessionId(), mintSessionId()];
    const records = new Map([
      [sessionHash(mine), record()],
      [sessionHash(other), record({ member_id: 'usr_b' })],
    ]);
    const f = fakeIdentity(records);
    const auth = new SessionAuth(f.rpc, f.liveness, 30_000, 5_000, 100);
    auth.now = () => T0;
    await auth.authenticate(mine);
    await auth.authenticate(other);
    records.set(sessionHash(mine), record({ role: 'viewer' }));
    auth.dropMember('usr_a');
    expect((await auth.authenticate(mine)).record.role).toBe('viewer');
    await auth.authenticate(other);
    expect(f.calls).toHaveLength(3);
  });

  it('the session acts with its role’s scopes, per member, in the mode asked', () => {
    const key = SessionAuth.asKey({ id: 'x', hash: 'h', record: record({ role: 'viewer' }) }, 'test');
    expect(key.record).toMatchObject({ key_id: 'usr_a', tenant_id: 'ten_a', environment: 'test', scopes: ROLE_SCOPES.viewer, status: 'active' });
  });

  it('the CSRF token is the session’s own, checked in constant time; ids and hashes do not reveal it', () => {
    const id = mintSessionId();
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(SessionAuth.idOf(id)).toBe(id);
    expect(SessionAuth.idOf(`${id}x`)).toBeUndefined();
    expect(csrfMatches(csrfToken(id), id)).toBe(true);
    expect(csrfMatches(csrfToken(mintSessionId()), id)).toBe(false);
    expect(csrfMatches(undefined, id)).toBe(false);
    expect(csrfMatches([csrfToken(id)], id)).toBe(false);
    expect(sessionHash(id)).not.toContain(csrfToken(id));
  });
});
