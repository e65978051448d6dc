import { keyPrefix, newId, STREAMS, type Scope, type VerificationRecord } from '@keyway/contracts';
import { jetStreamContext, type JetStreamContext } from '@keyway/messaging';
import { PrivateNats, eventually } from '@keyway/testing';
import type { JetStreamClient } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ensureUsageStream, publishedUsage } from './testing';
import { CallOutcome, neededScopes, UsageRecorder } from './usage-recorder';

/**
 * The gateway's usage aggregation against a real nats-server and the usage stream as identity
 * configures it: what each `used` v2 event says about the calls behind it.
 */
describe('UsageRecorder: used v2 events on KEYWAY_USAGE', () => {
  let nats: PrivateNats;
  let nc: NatsConnection;
  let jet: JetStreamContext;
  const errors: Error[] = [];
  const T = Date.parse('2026-03-01T10:00:00.000Z');

  const record = (over: Partial<VerificationRecord> = {}): VerificationRecord => ({
    key_id: newId('key'),
    tenant_id: 'ten_a',
    prefix: keyPrefix('live', newId('key').slice(-8)),
    environment: 'live',
    scopes: ['contacts:write', 'keys:read'],
    status: 'active',
    expires_at: null,
    valid_until: null,
    rate_limit: { burst_per_second: 10, per_minute: 100, per_hour: 1000, daily: 10000 },
    hash: 'h',
    siblings: [],
    ...over,
  });
  const recorder = () => new UsageRecorder(nc, 'gw-1', 60_000, (err) => errors.push(err));
  const published = () => publishedUsage(jet);

  beforeAll(async () => {
    nats = await PrivateNats.start();
    nc = await connect({ servers: nats.url });
    jet = await jetStreamContext(nc);
  });
  beforeEach(async () => {
    errors.length = 0;
    await jet.jsm.streams.delete(STREAMS.usage.name).catch(() => undefined);
    await ensureUsageStream(jet);
  });
  afterEach(() => jest.restoreAllMocks());
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  it('counts every call, the rate-limited ones apart, and names the scopes the admitted calls needed', async () => {
    const r = recorder();
    const rec = record();
    r.record(rec, neededScopes(rec.scopes, ['contacts:read']), T + 1_000);
    r.record(rec, neededScopes(rec.scopes, ['keys:read', 'audit:read']), T + 2_000);
    r.record(rec, neededScopes(rec.scopes, []), T + 3_000); // whoami
    r.record(rec, CallOutcome.rateLimited, T + 4_000);
    r.record(rec, CallOutcome.rateLimited, T + 5_000);
    r.record(rec, CallOutcome.refused, T + 6_000);
    await r.flush();

    const events = await published();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'used',
      schema_version: 2,
      tenant_id: 'ten_a',
      key_id: rec.key_id,
      prefix: rec.prefix,
      actor: { type: 'system', id: 'gw-1' },
      occurred_at: new Date(T + 6_000).toISOString(),
      data: {
        count: 6,
        rate_limited: 2,
        first_at: new Date(T + 1_000).toISOString(),
        last_at: new Date(T + 6_000).toISOString(),
        scopes_used: ['contacts:read', 'keys:read'],
        secret: 'current',
      },
    });
    expect(errors).toEqual([]);
  });

  it('sends one event per secret: a call with the previous secret inside its grace is `previous`', async () => {
    const r = recorder();
    const current = record();
    const previous = record({ key_id: current.key_id, prefix: keyPrefix('live', newId('key').slice(-8)), valid_until: new Date(T + 3_600_000).toISOString() });
    r.record(current, 0, T);
    r.record(previous, 0, T + 1);
    r.record(previous, CallOutcome.rateLimited, T + 2);
    await r.flush();

    const events = await published();
    const bySecret = Object.fromEntries(events.map((e) => [e.data.secret, e]));
    expect(events).toHaveLength(2);
    expect(bySecret.current).toMatchObject({ key_id: current.key_id, prefix: current.prefix, data: { count: 1, rate_limited: 0 } });
    expect(bySecret.previous).toMatchObject({ key_id: current.key_id, prefix: previous.prefix, data: { count: 2, rate_limited: 1, scopes_used: [] } });
  });

  it('starts a new event for a secret that became the previous one (rotated) within the interval', async () => {
    const r = recorder();
    const rec = record();
    r.record(rec, 0, T);
    r.record({ ...rec, valid_until: new Date(T + 3_600_000).toISOString() }, 0, T + 1);
    r.record({ ...rec, valid_until: new Date(T + 3_600_000).toISOString() }, 0, T + 2);
    await r.flush();
    expect((await published()).map((e) => [e.prefix, e.data.secret, e.data.count]).sort()).toEqual([
      [rec.prefix, 'current', 1],
      [rec.prefix, 'previous', 2],
    ]);
  });

  it('never lets one event span two UTC minutes, and stays quiet with nothing recorded', async () => {
    const r = recorder();
    const rec = record();
    await r.flush();
    r.record(rec, 0, T + 59_999);
    r.record(rec, 0, T + 60_000);
    r.record(rec, 0, T + 60_001);
    await r.flush();
    const events = (await published()).sort((a, b) => a.data.first_at.localeCompare(b.data.first_at));
    expect(events.map((e) => [e.data.first_at, e.data.last_at, e.data.count])).toEqual([
      [new Date(T + 59_999).toISOString(), new Date(T + 59_999).toISOString(), 1],
      [new Date(T + 60_000).toISOString(), new Date(T + 60_001).toISOString(), 2],
    ]);
  });

  it('republishes a failed event as the same event (same id): a publish that landed but lost its ack is not counted twice', async () => {
    const r = recorder();
    const js = (r as unknown as { js: JetStreamClient }).js;
    const real = js.publish.bind(js);
    jest.spyOn(js, 'publish').mockImplementationOnce(async (...args) => {
      await real(...args);
      throw new Error('TIMEOUT: the ack was lost');
    });
    const rec = record();
    r.record(rec, 0, T);
    await r.flush();
    expect(errors.map((e) => e.message)).toEqual(['TIMEOUT: the ack was lost']);
    await r.flush(); // the retry: deduplicated by the stream
    expect((await published()).map((e) => e.data.count)).toEqual([1]);
    expect((await jet.jsm.streams.info(STREAMS.usage.name)).state.messages).toBe(1);
  });

  it('keeps what it could not publish (no stream) and sends it once the stream is back, with what came since', async () => {
    await jet.jsm.streams.delete(STREAMS.usage.name);
    const r = recorder();
    const rec = record();
    r.record(rec, 0, T);
    await r.flush();
    expect(errors).toHaveLength(1);
    await ensureUsageStream(jet);
    r.record(rec, 0, T + 1_000);
    await r.flush();
    expect((await published()).map((e) => e.data.first_at).sort()).toEqual([new Date(T).toISOString(), new Date(T + 1_000).toISOString()]);
  });

  it('flushes on a timer, and on stop', async () => {
    const r = new UsageRecorder(nc, 'gw-2', 50, (err) => errors.push(err));
    r.start();
    const rec = record();
    r.record(rec, 0);
    await eventually(async () => (await published()).length === 1);
    r.record(rec, 0);
    await r.stop();
    expect((await published()).map((e) => e.data.count)).toEqual([1, 1]);
  });
});

describe('neededScopes: what an admitted call needed', () => {
  const needed = (granted: Scope[], required: Scope[]) => {
    const mask = neededScopes(granted, required);
    return (['contacts:read', 'contacts:write', 'keys:read', 'audit:read'] as const).filter((s) => (mask & neededScopes([s], [s])) !== 0);
  };

  it('names the scope the route requires, even when the key holds it through write', () => {
    expect(needed(['contacts:write'], ['contacts:read'])).toEqual(['contacts:read']);
    expect(needed(['contacts:write'], ['contacts:write'])).toEqual(['contacts:write']);
  });

  it('records every alternative of a route the key holds: either alone would have done', () => {
    expect(needed(['keys:read', 'audit:read'], ['keys:read', 'audit:read'])).toEqual(['keys:read', 'audit:read']);
    expect(needed(['audit:read'], ['keys:read', 'audit:read'])).toEqual(['audit:read']);
  });

  it('is none for a route that needs none, and none (refused) when the key holds none of the list', () => {
    expect(neededScopes(['contacts:read'], [])).toBe(0);
    expect(neededScopes(['contacts:read'], ['contacts:write'])).toBe(0);
    expect(neededScopes(['contacts:read'], ['keys:read', 'audit:read'])).toBe(0);
  });
});
