import { jetStreamContext, type JetStreamContext } from '@keyway/messaging';
import { startInfra, type TestInfra } from '@keyway/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { FakeServices, http, startGateway, type RunningGateway } from '../../test/fakes';
import { GatewayCore } from '../gateway-core';
import { awayFromBoundary } from '../rate-limit/testing';
import { ensureUsageStream, publishedUsage } from './testing';

/** What the request path records for each kind of answer, read back from the stream the gateway publishes to. */
describe('gateway: every authenticated call is counted in used v2', () => {
  let infra: TestInfra;
  let fake: FakeServices;
  let gw: RunningGateway;
  let nc: NatsConnection;
  let jet: JetStreamContext;

  const flush = () => gw.app.get(GatewayCore).usage.flush();
  const eventsOf = async (keyId: string) => (await publishedUsage(jet)).filter((e) => e.key_id === keyId);

  beforeAll(async () => {
    infra = await startInfra('gateway_usage');
    nc = await connect({ servers: infra.natsUrl });
    jet = await jetStreamContext(nc);
    await ensureUsageStream(jet);
    fake = await FakeServices.start(infra.natsUrl);
    // Flushed by the test only.
    gw = await startGateway(infra, { USAGE_FLUSH_MS: '600000' });
  });
  afterAll(async () => {
    await gw?.close();
    await fake?.stop();
    await nc?.close();
    await infra?.stop();
  });

  it('records the scopes admitted calls needed, counts a 403 but gives it no scope, and never counts a failed authentication', async () => {
    const k = fake.mint(['contacts:write', 'keys:read']);
    expect((await http(gw.url, 'GET', '/v1/contacts/ct_1', { key: k.key })).status).toBe(200);
    expect((await http(gw.url, 'GET', '/v1/contacts', { key: k.key })).status).toBe(200);
    expect((await http(gw.url, 'GET', '/v1/keys/key_1/logs', { key: k.key })).status).toBe(200);
    expect((await http(gw.url, 'GET', '/v1/whoami', { key: k.key })).status).toBe(200);
    expect((await http(gw.url, 'GET', '/v1/users', { key: k.key })).status).toBe(403);
    expect((await http(gw.url, 'GET', '/v1/whoami', { key: `${k.key.slice(0, -1)}${k.key.endsWith('A') ? 'B' : 'A'}` })).status).toBe(401);
    await flush();

    const events = await eventsOf(k.record.key_id);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      schema_version: 2,
      tenant_id: k.record.tenant_id,
      prefix: k.record.prefix,
      data: { count: 5, rate_limited: 0, scopes_used: ['contacts:read', 'keys:read'], secret: 'current' },
    });
  });

  it('counts rate-limited calls in count and in rate_limited', async () => {
    const k = fake.mint(['contacts:read'], { override: { burst_per_second: 2 } });
    await awayFromBoundary('burst_per_second', 700);
    const statuses: number[] = [];
    for (let i = 0; i < 20 && statuses.filter((s) => s === 429).length < 2; i++) statuses.push((await http(gw.url, 'GET', '/v1/contacts', { key: k.key })).status);
    await flush();
    const events = await eventsOf(k.record.key_id);
    expect(events.reduce((n, e) => n + e.data.count, 0)).toBe(statuses.length);
    expect(events.reduce((n, e) => n + e.data.rate_limited, 0)).toBe(statuses.filter((s) => s === 429).length);
    expect(events.flatMap((e) => e.data.scopes_used ?? [])).toContain('contacts:read');
  });

  it('marks a call with an older secret still inside its rotation grace as previous', async () => {
    const current = fake.mint(['contacts:read']);
    const previous = fake.mint(['contacts:read'], { key_id: current.record.key_id, valid_until: new Date(Date.now() + 3_600_000).toISOString() });
    expect((await http(gw.url, 'GET', '/v1/whoami', { key: current.key })).status).toBe(200);
    expect((await http(gw.url, 'GET', '/v1/whoami', { key: previous.key })).status).toBe(200);
    expect((await http(gw.url, 'GET', '/v1/contacts', { key: previous.key })).status).toBe(200);
    await flush();
    const events = await eventsOf(current.record.key_id);
    expect(events.map((e) => [e.prefix, e.data.secret, e.data.count]).sort()).toEqual(
      [[current.record.prefix, 'current', 1], [previous.record.prefix, 'previous', 2]].sort(),
    );
  });
});
