import { deadLetterSubject, eventSubject, newId, Rpc, STREAMS, type CreatedTenant, type IssuedKey, type KeyView } from '@keyway/contracts';
import { jetStreamContext, publishEvent, type JetStreamContext } from '@keyway/messaging';
import { eventually } from '@keyway/testing';
import { startIdentity, type IdentityHarness } from '../../test/identity-harness';
import { LAST_USED_DURABLE, parseLastUse } from './last-used.consumer';

describe('identity: the last-used projection consumes used events in batches', () => {
  let h: IdentityHarness;
  let tenant: string;
  let jet: JetStreamContext;
  const terminated: Array<{ seq: number; deliveries: number }> = [];
  const HOUR = 3_600_000;
  const USAGE = STREAMS.usage.name;
  const base = Date.now() - 10 * HOUR;
  const at = (minutes: number): string => new Date(base + minutes * 60_000).toISOString();

  const used = (keyId: string, lastUsedAt: string, over: Record<string, unknown> = {}) => ({
    id: newId('event'),
    type: 'used',
    schema_version: 2,
    occurred_at: lastUsedAt,
    tenant_id: tenant,
    key_id: keyId,
    prefix: 'kw_test_abcd1234',
    actor: { type: 'system', id: 'gateway' },
    data: { count: 1, rate_limited: 0, first_at: lastUsedAt, last_at: lastUsedAt, scopes_used: null, secret: 'current' },
    ...over,
  });
  const publish = async (e: { id: string; [field: string]: unknown }): Promise<number> => (await publishEvent(jet.js, eventSubject('used'), e)).seq;
  const lastUsed = async (keyId: string): Promise<string | null> => {
    const rows = await h.ds.query<Array<{ t: Date | null }>>('SELECT last_used_at AS t FROM keys WHERE id = $1', [keyId]);
    return rows[0]?.t ? rows[0].t.toISOString() : null;
  };
  const previousUsed = async (keyId: string): Promise<string | null> => {
    const rows = await h.ds.query<Array<{ t: Date | null }>>('SELECT previous_secret_last_used_at AS t FROM keys WHERE id = $1', [keyId]);
    return rows[0]?.t ? rows[0].t.toISOString() : null;
  };
  const view = (id: string) => h.ok<KeyView>(Rpc.keysGet, { ctx: h.ctx(tenant), params: { id } });
  const previous = (keyId: string, lastUsedAt: string) =>
    used(keyId, lastUsedAt, { data: { count: 2, rate_limited: 1, first_at: lastUsedAt, last_at: lastUsedAt, scopes_used: ['contacts:read'], secret: 'previous' } });
  const createKey = async (): Promise<IssuedKey> =>
    h.ok<IssuedKey>(Rpc.keysCreate, { ctx: h.ctx(tenant), body: { name: `k ${newId('key')}`, scopes: [] } });
  const settled = () =>
    eventually(async () => {
      const i = await jet.jsm.consumers.info(USAGE, LAST_USED_DURABLE);
      return i.num_pending === 0 && i.num_ack_pending === 0;
    });

  beforeAll(async () => {
    h = await startIdentity('lastused');
    tenant = (await h.ok<CreatedTenant>(Rpc.tenantsCreate, { ctx: { ...h.ctx(''), actor: { type: 'operator', id: 'op' } }, body: { name: 'Acme' } })).tenant.id;
    jet = await jetStreamContext(h.nc);
    h.nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.${USAGE}.${LAST_USED_DURABLE}`, {
      callback: (_err, m) => {
        const a = m.json<{ stream_seq: number; deliveries: number }>();
        terminated.push({ seq: a.stream_seq, deliveries: a.deliveries });
      },
    });
  });
  afterAll(() => h.close());

  it('takes the latest use of each key, never goes back, and ignores another tenant', async () => {
    const a = await createKey();
    const b = await createKey();
    // Out of order and interleaved, as several gateways send them.
    for (const e of [used(a.id, at(10)), used(b.id, at(5)), used(a.id, at(30)), used(a.id, at(20)), used(b.id, at(90), { tenant_id: 'ten_other' })]) {
      await publish(e);
    }
    await eventually(async () => (await lastUsed(a.id)) === at(30) && (await lastUsed(b.id)) === at(5));

    await publish(used(a.id, at(25))); // late: older than what is stored
    await publish(used(b.id, at(6)));
    await eventually(async () => (await lastUsed(b.id)) === at(6));
    await settled();
    expect(await lastUsed(a.id)).toBe(at(30));
  });

  it('ignores a use from before the last rotation, and takes one after it', async () => {
    const k = await createKey();
    await publish(used(k.id, at(1)));
    await eventually(async () => (await lastUsed(k.id)) === at(1));
    await h.ok(Rpc.keysRotate, { ctx: h.ctx(tenant), params: { id: k.id }, body: {} });
    expect(await lastUsed(k.id)).toBeNull();

    await publish(used(k.id, at(2))); // before the rotation
    const after = new Date(Date.now() + HOUR).toISOString();
    const marker = await createKey();
    await publish(used(marker.id, at(3)));
    await eventually(async () => (await lastUsed(marker.id)) === at(3));
    await settled();
    expect(await lastUsed(k.id)).toBeNull();

    await publish(used(k.id, after));
    await eventually(async () => (await lastUsed(k.id)) === after);
  });

  it('terminates at once a used event Postgres could not store, and applies the rest of its batch', async () => {
    const k = await createKey();
    const badTime = await publish(used(k.id, 'yesterday'));
    const nul = await publish(used(`${k.id}\u0000`, at(40)));
    const notUsed = await publish({ ...used(k.id, at(41)), type: 'revoked', schema_version: 1, data: { reason: null } });
    await publish(used(k.id, at(42)));

    await eventually(async () => (await lastUsed(k.id)) === at(42));
    await eventually(async () => [badTime, nul, notUsed].every((seq) => terminated.some((t) => t.seq === seq)));
    expect(terminated.filter((t) => [badTime, nul, notUsed].includes(t.seq))).toEqual([
      { seq: badTime, deliveries: 1 },
      { seq: nul, deliveries: 1 },
      { seq: notUsed, deliveries: 1 },
    ]);
    await settled();
    expect((await jet.jsm.consumers.info(USAGE, LAST_USED_DURABLE)).num_redelivered).toBe(0);
    // Each went to the dead-letter stream, with its reason.
    const dlq = await jet.jsm.streams.info(STREAMS.dlq.name, { subjects_filter: deadLetterSubject(USAGE, LAST_USED_DURABLE) });
    expect(dlq.state.subjects?.[deadLetterSubject(USAGE, LAST_USED_DURABLE)]).toBeGreaterThanOrEqual(3);
  });
  it('a use of the previous secret moves only previous_secret_last_used_at, shown only inside the grace; current moves only last_used_at', async () => {
    const k = await createKey();
    await h.ok(Rpc.keysRotate, { ctx: h.ctx(tenant), params: { id: k.id }, body: { grace_period_seconds: 3600 } });
    const soon = (s: number) => new Date(Date.now() + s * 1000).toISOString();
    const first = soon(1);
    await publish(previous(k.id, first));
    await eventually(async () => (await previousUsed(k.id)) === first);
    expect(await lastUsed(k.id)).toBeNull();
    expect((await view(k.id)).previous_secret_last_used_at).toBe(first);
    expect((await view(k.id)).last_used_at).toBeNull();

    await publish(used(k.id, soon(2)));
    await eventually(async () => (await lastUsed(k.id)) !== null);
    expect(await previousUsed(k.id)).toBe(first);
    // Older, redelivered, or the same again: nothing moves back.
    const firstEvent = previous(k.id, first);
    await publish(previous(k.id, new Date(Date.parse(first) - 1000).toISOString()));
    await publish(firstEvent);
    await jet.js.publish(eventSubject('used'), JSON.stringify(firstEvent)); // past the dedupe: a redelivery
    await settled();
    expect(await previousUsed(k.id)).toBe(first);

    // The grace ended early: no previous secret, so the view shows null.
    await h.ok(Rpc.keysRotateComplete, { ctx: h.ctx(tenant), params: { id: k.id }, body: {} });
    expect((await view(k.id)).previous_secret_last_used_at).toBeNull();
    expect((await view(k.id)).last_used_at).not.toBeNull();
  });

  it('a key never rotated, or rotated without grace, shows previous_secret_last_used_at null whatever arrives', async () => {
    const k = await createKey();
    await publish(previous(k.id, at(50)));
    const marker = await createKey();
    await publish(used(marker.id, at(51)));
    await eventually(async () => (await lastUsed(marker.id)) === at(51));
    await settled();
    expect((await view(k.id)).previous_secret_last_used_at).toBeNull();
    expect(await lastUsed(k.id)).toBeNull();
  });

  it('v1 used events (as gateways before v2 sent them) still move last_used_at, as uses of the current secret', async () => {
    const k = await createKey();
    await publish({ ...used(k.id, at(60)), schema_version: 1, data: { count: 1, first_used_at: at(59), last_used_at: at(60) } });
    await eventually(async () => (await lastUsed(k.id)) === at(60));
    expect(parseLastUse({ ...used(k.id, at(60)), schema_version: 1, data: { count: 1, first_used_at: at(59), last_used_at: at(60) } })).toEqual({
      keyId: k.id,
      tenantId: tenant,
      at: at(60),
      secret: 'current',
    });
  });
});
