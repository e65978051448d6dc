import { GATEWAY_INVALIDATE, Rpc, hashMatches, parseKey, type CreatedTenant, type IssuedKey, type KeyView, type VerifyReply } from '@keyway/contracts';
import { jetStreamContext } from '@keyway/messaging';
import { eventually } from '@keyway/testing';
import { startIdentity, type IdentityHarness } from '../../test/identity-harness';
import { ExpirySweeper } from './expiry.sweeper';
import { rebuildReadModels } from './rebuild-read-models';
import { EventStore, stamp } from '../event-store/event-store';
import { GroupCommit } from '../event-store/group-commit';
import { appendNewKeys, type NewKey } from './keys.handler';
import { decide, evolve, initialKeyState } from './key.decider';
import { hashKey, mintKey, newId } from '@keyway/contracts';

describe('identity: key lifecycle over NATS', () => {
  let h: IdentityHarness;
  let tenant: CreatedTenant;

  beforeAll(async () => {
    h = await startIdentity('keys');
    tenant = (await h.call<CreatedTenant>(Rpc.tenantsCreate, { ctx: { ...h.ctx(''), actor: { type: 'operator', id: 'op' } }, body: { name: 'Acme' } })).response!;
  });
  afterAll(() => h.close());

  const verify = async (key: string) => {
    const parsed = parseKey(key)!;
    const reply = (await h.call<VerifyReply>(Rpc.keysVerify, { lookup_id: parsed.lookupId })).response!;
    return reply.record && hashMatches(key, reply.record.hash) && (reply.record.valid_until === null || Date.parse(reply.record.valid_until) > Date.now())
      ? reply.record.status
      : 'invalid';
  };

  it('creates a tenant with a root key holding every scope', async () => {
    expect(tenant.tenant.id).toMatch(/^ten_/);
    expect(tenant.root_key.scopes).toHaveLength(10);
    expect(parseKey(tenant.root_key.key)).not.toBeNull();
    expect(await verify(tenant.root_key.key)).toBe('active');
  });

  it('creates, lists, rotates with and without grace, disables, revokes', async () => {
    const ctx = h.ctx(tenant.tenant.id);
    const created = (await h.call<IssuedKey>(Rpc.keysCreate, { ctx, body: { name: 'ci', scopes: ['contacts:read'], rate_limit: { per_minute: 10 } } })).response!;
    expect(created.key.startsWith(created.prefix)).toBe(true);
    expect(created).toMatchObject({ status: 'active', enabled: true, last_used_at: null, rate_limit: { per_minute: 10, burst_per_second: 60 } });
    const listed = (await h.call<{ total: number; data: KeyView[] }>(Rpc.keysList, { ctx, query: {} })).response!;
    expect(listed.total).toBe(2);
    expect(JSON.stringify(listed)).not.toContain(created.key);

    const graceful = (await h.call<IssuedKey>(Rpc.keysRotate, { ctx, params: { id: created.id }, body: { grace_period_seconds: 60 } })).response!;
    expect(graceful.prefix).not.toBe(created.prefix);
    expect(await verify(created.key)).toBe('active');
    expect(await verify(graceful.key)).toBe('active');

    const hard = (await h.call<IssuedKey>(Rpc.keysRotate, { ctx, params: { id: created.id }, body: {} })).response!;
    expect(await verify(graceful.key)).toBe('invalid');
    expect(await verify(hard.key)).toBe('active');

    await h.call(Rpc.keysUpdate, { ctx, params: { id: created.id }, body: { enabled: false } });
    expect(await verify(hard.key)).toBe('disabled');
    await h.call(Rpc.keysUpdate, { ctx, params: { id: created.id }, body: { enabled: true, name: 'ci-2' } });
    expect(await verify(hard.key)).toBe('active');

    const revoked = (await h.call<KeyView>(Rpc.keysRevoke, { ctx, params: { id: created.id }, body: {} })).response!;
    expect(revoked.status).toBe('revoked');
    expect(await verify(hard.key)).toBe('revoked');
    expect((await h.call(Rpc.keysUpdate, { ctx, params: { id: created.id }, body: { enabled: true } })).err?.code).toBe('conflict');
    expect((await h.call(Rpc.keysRotate, { ctx, params: { id: created.id }, body: {} })).err?.code).toBe('conflict');
  });

  it('verify names the other secrets still inside a grace (siblings), so a gateway can drop them by key', async () => {
    const ctx = h.ctx(tenant.tenant.id);
    const first = (await h.call<IssuedKey>(Rpc.keysCreate, { ctx, body: { name: 'siblings', scopes: [] } })).response!;
    const lookup = (key: string) => parseKey(key)!.lookupId;
    const record = async (key: string) => (await h.call<VerifyReply>(Rpc.keysVerify, { lookup_id: lookup(key) })).response!.record!;
    expect((await record(first.key)).siblings).toEqual([]);
    const second = (await h.call<IssuedKey>(Rpc.keysRotate, { ctx, params: { id: first.id }, body: { grace_period_seconds: 3600 } })).response!;
    const third = (await h.call<IssuedKey>(Rpc.keysRotate, { ctx, params: { id: first.id }, body: { grace_period_seconds: 3600 } })).response!;
    expect((await record(first.key)).siblings.sort()).toEqual([lookup(second.key), lookup(third.key)].sort());
    // Without a grace the older secrets end: nobody is left beside the newest.
    const fourth = (await h.call<IssuedKey>(Rpc.keysRotate, { ctx, params: { id: first.id }, body: {} })).response!;
    expect((await record(fourth.key)).siblings).toEqual([]);
  });

  it('rotate/complete ends the grace at once: the old secret stops, the new one works, a retry answers the key with no event', async () => {
    const ctx = h.ctx(tenant.tenant.id);
    const first = (await h.call<IssuedKey>(Rpc.keysCreate, { ctx, body: { name: 'completes', scopes: ['contacts:read'] } })).response!;
    const second = (await h.call<IssuedKey>(Rpc.keysRotate, { ctx, params: { id: first.id }, body: { grace_period_seconds: 3600 } })).response!;
    expect(await verify(first.key)).toBe('active');
    const done = await h.call<KeyView>(Rpc.keysRotateComplete, { ctx, params: { id: first.id }, body: {} });
    expect(done.response).toMatchObject({ id: first.id, prefix: second.prefix, status: 'active' });
    expect(JSON.stringify(done.response)).not.toContain(second.key.slice(second.prefix.length + 1));
    expect(await verify(first.key)).toBe('invalid');
    expect(await verify(second.key)).toBe('active');
    const events: Array<{ type: string; version: number; data: unknown; prefix: string }> = await h.ds.query(
      `SELECT type, version, data, prefix FROM events WHERE stream_id = $1 ORDER BY version`,
      [first.id],
    );
    expect(events.at(-1)).toEqual({ type: 'rotation_completed', version: 3, prefix: second.prefix, data: { ended_prefixes: [first.prefix] } });
    const again = await h.call<KeyView>(Rpc.keysRotateComplete, { ctx, params: { id: first.id }, body: {} });
    expect(again.response).toEqual(done.response);
    expect(await h.ds.query(`SELECT count(*)::int AS n FROM events WHERE stream_id = $1`, [first.id])).toEqual([{ n: 3 }]);
    // Not a key of this tenant: not found; a body with fields: invalid_request; revoked: conflict.
    const other = (await h.call<CreatedTenant>(Rpc.tenantsCreate, { ctx: h.ctx(''), body: { name: 'Completer' } })).response!;
    expect((await h.call(Rpc.keysRotateComplete, { ctx: h.ctx(other.tenant.id), params: { id: first.id }, body: {} })).err?.code).toBe('not_found');
    expect((await h.call(Rpc.keysRotateComplete, { ctx, params: { id: first.id }, body: { grace_period_seconds: 1 } })).err?.code).toBe('invalid_request');
    await h.call(Rpc.keysRevoke, { ctx, params: { id: first.id }, body: {} });
    expect((await h.call(Rpc.keysRotateComplete, { ctx, params: { id: first.id }, body: {} })).err?.code).toBe('conflict');
  });

  it('rotate/complete reaches every older secret still in a grace and the gateways are told before it answers', async () => {
    const ctx = h.ctx(tenant.tenant.id);
    const a = (await h.call<IssuedKey>(Rpc.keysCreate, { ctx, body: { name: 'three secrets', scopes: [] } })).response!;
    const b = (await h.call<IssuedKey>(Rpc.keysRotate, { ctx, params: { id: a.id }, body: { grace_period_seconds: 3600 } })).response!;
    const c = (await h.call<IssuedKey>(Rpc.keysRotate, { ctx, params: { id: a.id }, body: { grace_period_seconds: 600 } })).response!;
    const told: string[][] = [];
    const sub = h.nc.subscribe(GATEWAY_INVALIDATE, { callback: (_e, m) => void told.push((JSON.parse(m.string()) as { lookup_ids: string[] }).lookup_ids) });
    await h.nc.flush();
    await h.call(Rpc.keysRotateComplete, { ctx, params: { id: a.id }, body: {} });
    sub.unsubscribe();
    expect([await verify(a.key), await verify(b.key), await verify(c.key)]).toEqual(['invalid', 'invalid', 'active']);
    const lookup = (k: string) => parseKey(k)!.lookupId;
    expect(told.flat()).toEqual(expect.arrayContaining([lookup(a.key), lookup(b.key)]));
    const credentials: Array<{ lookup_id: string; ended: boolean }> = await h.ds.query(
      `SELECT lookup_id, valid_until IS NOT NULL AND valid_until <= now() AS ended FROM key_credentials WHERE key_id = $1 ORDER BY created_at`,
      [a.id],
    );
    expect(credentials).toEqual([
      { lookup_id: lookup(a.key), ended: true },
      { lookup_id: lookup(b.key), ended: true },
      { lookup_id: lookup(c.key), ended: false },
    ]);
  });

  it('a replayed revoke (same Idempotency-Key) tells the gateways again before it answers: the first call may have died before its invalidation', async () => {
    const ctx = h.ctx(tenant.tenant.id);
    const k = (await h.call<IssuedKey>(Rpc.keysCreate, { ctx, body: { name: 'replayed revoke', scopes: [] } })).response!;
    const rotated = (await h.call<IssuedKey>(Rpc.keysRotate, { ctx, params: { id: k.id }, body: { grace_period_seconds: 600 } })).response!;
    const once = { ...ctx, idempotency: { key: `revoke-${k.id}`, body_hash: 'a'.repeat(64) } };
    const first = await h.call<KeyView>(Rpc.keysRevoke, { ctx: once, params: { id: k.id }, body: {} });
    expect(first.response?.status).toBe('revoked');
    const told: string[][] = [];
    const sub = h.nc.subscribe(GATEWAY_INVALIDATE, { callback: (_e, m) => void told.push((JSON.parse(m.string()) as { lookup_ids: string[] }).lookup_ids) });
    await h.nc.flush();
    const again = await h.call<KeyView>(Rpc.keysRevoke, { ctx: once, params: { id: k.id }, body: {} });
    sub.unsubscribe();
    expect(again.replayed).toBe(true);
    const lookup = (key: string) => parseKey(key)!.lookupId;
    expect(told.flat()).toEqual(expect.arrayContaining([lookup(k.key), lookup(rotated.key)]));
    expect(await h.ds.query(`SELECT count(*)::int AS n FROM events WHERE stream_id = $1 AND type = 'revoked'`, [k.id])).toEqual([{ n: 1 }]);
  });

  it("answers not_found for another tenant's key on every command", async () => {
    const other = (await h.call<CreatedTenant>(Rpc.tenantsCreate, { ctx: h.ctx(''), body: { name: 'Other' } })).response!;
    const id = tenant.root_key.id;
    const ctx = h.ctx(other.tenant.id);
    for (const [subject, extra] of [
      [Rpc.keysGet, {}],
      [Rpc.keysUpdate, { body: { name: 'x' } }],
      [Rpc.keysRotate, { body: {} }],
      [Rpc.keysRotateComplete, { body: {} }],
      [Rpc.keysRevoke, { body: {} }],
    ] as const) {
      expect((await h.call(subject, { ctx, params: { id }, ...extra })).err?.code).toBe('not_found');
    }
    expect(await verify(tenant.root_key.key)).toBe('active');
  });

  it('refuses bad input with invalid_request and details', async () => {
    const ctx = h.ctx(tenant.tenant.id);
    const past = (await h.call(Rpc.keysCreate, { ctx, body: { name: 'x', scopes: [], expires_at: '2001-01-01T00:00:00Z' } })).err;
    expect(past?.code).toBe('invalid_request');
    const badScope = (await h.call(Rpc.keysCreate, { ctx, body: { name: 'x', scopes: ['everything'] } })).err;
    expect(badScope?.code).toBe('invalid_request');
    const unknownField = (await h.call(Rpc.keysCreate, { ctx, body: { name: 'x', scopes: [], admin: true } })).err;
    expect(unknownField?.code).toBe('invalid_request');
    const grace = (await h.call(Rpc.keysRotate, { ctx, params: { id: tenant.root_key.id }, body: { grace_period_seconds: 86_401 } })).err;
    expect(grace?.code).toBe('invalid_request');
  });

  it('8 concurrent rotations: each 200 or 409, exactly one issued secret works', async () => {
    const ctx = h.ctx(tenant.tenant.id);
    const key = (await h.call<IssuedKey>(Rpc.keysCreate, { ctx, body: { name: 'contended', scopes: [] } })).response!;
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => h.call<IssuedKey>(Rpc.keysRotate, { ctx, params: { id: key.id }, body: {} })),
    );
    for (const a of answers) expect(a.response !== undefined || a.err?.code === 'conflict').toBe(true);
    const issued = answers.flatMap((a) => (a.response ? [a.response.key] : []));
    expect(issued.length).toBeGreaterThanOrEqual(1);
    const working = [];
    for (const k of [key.key, ...issued]) if ((await verify(k)) === 'active') working.push(k);
    expect(working).toHaveLength(1);
    const versions: Array<{ version: number }> = await h.ds.query(`SELECT version FROM events WHERE stream_id = $1 ORDER BY version`, [key.id]);
    expect(versions.map((v) => v.version)).toEqual(versions.map((_, i) => i + 1));
    // The losers wrote nothing: the list row is the winner's, at the stream's last version, and
    // the only credentials are the original one and the winner's.
    const [row]: Array<{ prefix: string; version: number }> = await h.ds.query(`SELECT prefix, version FROM keys WHERE id = $1`, [key.id]);
    expect(row).toEqual({ prefix: parseKey(working[0]!)!.prefix, version: versions.length });
    const credentials: Array<{ n: number }> = await h.ds.query(`SELECT count(*)::int AS n FROM key_credentials WHERE key_id = $1`, [key.id]);
    expect(credentials[0]!.n).toBe(versions.length);
  });

  it('expires a key at expires_at, records expired once', async () => {
    const ctx = h.ctx(tenant.tenant.id);
    const soon = new Date(Date.now() + 1_500).toISOString();
    const key = (await h.call<IssuedKey>(Rpc.keysCreate, { ctx, body: { name: 'short', scopes: [], expires_at: soon } })).response!;
    expect(await verify(key.key)).toBe('active');
    await eventually(async () => (await verify(key.key)) === 'expired', 5_000);
    const sweeper = h.app.get(ExpirySweeper);
    await sweeper.sweep();
    await sweeper.sweep();
    const rows: Array<{ n: number }> = await h.ds.query(`SELECT count(*)::int AS n FROM events WHERE stream_id = $1 AND type = 'expired'`, [key.id]);
    expect(rows[0]!.n).toBe(1);
  });

  it('relays every committed event to JetStream with the event id as message id, each envelope carrying its version in the key stream', async () => {
    const { jsm } = await jetStreamContext(h.nc);
    const stored: Array<{ event_id: string; stream_id: string; version: number; type: string }> = await h.ds.query(
      `SELECT event_id, stream_id, version, type FROM events ORDER BY global_position`,
    );
    await eventually(async () => (await jsm.streams.info(h.config.KEYWAY_STREAM)).state.messages === stored.length, 10_000);
    const onBus = [];
    for (let seq = 1; seq <= stored.length; seq++) {
      const m = await jsm.streams.getMessage(h.config.KEYWAY_STREAM, { seq });
      const e = m!.json<{ id: string; key_id: string; version?: number; type: string }>();
      onBus.push({ event_id: e.id, stream_id: e.key_id, version: e.version, type: e.type, subject: m!.subject, msgId: m!.header?.get('Nats-Msg-Id') });
    }
    expect(onBus).toEqual(stored.map((e) => ({ ...e, subject: `keyway.keys.${e.type}`, msgId: e.event_id })));
    expect(onBus.some((e) => e.type === 'rotation_completed')).toBe(true);
  });

  it('rebuilding the read models from the event store gives the live tables back', async () => {
    await h.ds.query(`UPDATE keys SET last_used_at = now() WHERE id = $1`, [tenant.root_key.id]);
    const snapshot = async () => ({
      keys: await h.ds.query(`SELECT * FROM keys ORDER BY id`),
      credentials: await h.ds.query(`SELECT * FROM key_credentials ORDER BY lookup_id`),
    });
    const live = await snapshot();
    expect(live.keys.length).toBeGreaterThan(3);
    const result = await rebuildReadModels(h.ds);
    expect(result.keys).toBe(live.keys.length);
    expect(await snapshot()).toEqual(live);
  });

  it('creates that arrive together share one statement, and every key works', async () => {
    const ctx = h.ctx(tenant.tenant.id);
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => h.call<IssuedKey>(Rpc.keysCreate, { ctx, body: { name: `batch ${i}`, scopes: ['contacts:read'] } })),
    );
    expect(answers.every((a) => a.response)).toBe(true);
    for (const a of answers) expect(await verify(a.response!.key)).toBe('active');
    const ids = answers.map((a) => a.response!.id);
    const [{ n }] = (await h.ds.query(`SELECT count(*)::int AS n FROM events WHERE stream_id = ANY($1) AND type = 'created' AND version = 1`, [ids])) as [{ n: number }];
    expect(n).toBe(50);
  });

  it('a failing key in a batch fails alone', async () => {
    let n = 0;
    const write = (lookupId?: string): NewKey => {
      const id = newId('key');
      const name = `batch member ${n++}`;
      const secret = mintKey('live');
      const now = new Date();
      const lookup = lookupId ?? secret.lookupId;
      const decided = decide({ type: 'create', tenant_id: tenant.tenant.id, name, scopes: [], environment: 'live', expires_at: null, rate_limit: null, metadata: {}, prefix: `kw_live_${lookup}` }, initialKeyState(id), now);
      const events = stamp(id, 0, decided, { tenant_id: tenant.tenant.id, actor: { type: 'system', id: 't' }, now });
      return { events, state: events.reduce(evolve, initialKeyState(id)), credential: { lookupId: lookup, keyId: id, hash: hashKey(secret.key), createdAt: now } };
    };
    const store = new EventStore(h.ds);
    const batcher = new GroupCommit((batch: readonly NewKey[]) => appendNewKeys(store, batch));
    const taken = (await h.ds.query(`SELECT lookup_id FROM key_credentials LIMIT 1`))[0].lookup_id as string;
    const results = await Promise.allSettled([batcher.add(write()), batcher.add(write()), batcher.add(write(taken)), batcher.add(write())]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
  });
});
