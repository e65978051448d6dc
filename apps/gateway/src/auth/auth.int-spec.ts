import { eventSubject, GATEWAY_HEARTBEAT, GatewayHeartbeat, keyEventEnvelope, mintKey, newId, type ErrorBody, type KeyEvent, type KeyEventDataOf } from '@keyway/contracts';
import { eventually, startInfra, type TestInfra } from '@keyway/testing';
import { FakeServices, http, startGateway, type MintedKey, type RunningGateway } from '../../test/fakes';

const err = (b: unknown): ErrorBody => b as ErrorBody;

describe('gateway auth against a fake identity on NATS', () => {
  let infra: TestInfra;
  let fake: FakeServices;
  let gw: RunningGateway;

  beforeAll(async () => {
    infra = await startInfra('gateway_auth');
    fake = await FakeServices.start(infra.natsUrl);
    gw = await startGateway(infra, { NATS_STALE_AFTER_MS: '600' });
  });
  afterAll(async () => {
    await gw?.close();
    await fake?.stop();
    await infra?.stop();
  });

  it('accepts a valid key and answers whoami with its record and remaining calls', async () => {
    const k = fake.mint(['contacts:read'], { expires_at: '2999-01-01T00:00:00.000Z' });
    const r = await http(gw.url, 'GET', '/v1/whoami', { key: k.key });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      api_key_id: k.record.key_id,
      prefix: k.prefix,
      tenant_id: k.record.tenant_id,
      scopes: ['contacts:read'],
      environment: 'live',
      rate_limit: k.record.rate_limit,
      expires_at: '2999-01-01T00:00:00.000Z',
    });
    expect(Object.keys((r.body as { remaining: object }).remaining).sort()).toEqual(['burst_per_second', 'daily', 'per_hour', 'per_minute']);
    expect(r.headers.get('ratelimit-limit')).toBeTruthy();
    expect(r.headers.get('ratelimit-remaining')).toBeTruthy();
    expect(r.headers.get('ratelimit-reset')).toBeTruthy();
  });

  it('answers each documented 401 code, naming the prefix and never the secret', async () => {
    const cases: Array<[string, string | undefined, string]> = [];
    cases.push(['missing header', undefined, 'missing_key']);
    const unknown = mintKey('live');
    cases.push(['unknown prefix', unknown.key, 'invalid_key']);
    const good = fake.mint();
    // A key with a valid checksum whose stored hash is another key's: the secret does not match.
    const other = fake.mint();
    fake.records.set(other.lookupId, { ...other.record, hash: good.record.hash, prefix: other.prefix });
    cases.push(['right prefix, wrong secret', other.key, 'invalid_key']);
    cases.push(['revoked', fake.mint(undefined, { status: 'revoked' }).key, 'key_revoked']);
    cases.push(['disabled', fake.mint(undefined, { status: 'disabled' }).key, 'key_disabled']);
    cases.push(['expired status', fake.mint(undefined, { status: 'expired' }).key, 'key_expired']);
    cases.push(['expires_at passed', fake.mint(undefined, { expires_at: new Date(Date.now() - 1000).toISOString() }).key, 'key_expired']);
    cases.push(['rotated away, grace over', fake.mint(undefined, { valid_until: new Date(Date.now() - 1).toISOString() }).key, 'invalid_key']);
    for (const [name, key, code] of cases) {
      const r = await http(gw.url, 'GET', '/v1/whoami', key === undefined ? {} : { key });
      expect({ name, status: r.status, code: err(r.body).code }).toEqual({ name, status: 401, code });
      expect(typeof err(r.body).error).toBe('string');
      if (key !== undefined) {
        const secret = key.slice(key.lastIndexOf('_') + 1);
        expect(r.text).not.toContain(secret);
        expect((r.body as { prefix: string }).prefix).toBe(key.slice(0, key.lastIndexOf('_')));
      }
      expect(r.headers.get('ratelimit-limit')).toBeNull();
    }
  });

  it('a rotated-away secret still works until valid_until', async () => {
    const k = fake.mint(undefined, { valid_until: new Date(Date.now() + 60_000).toISOString() });
    expect((await http(gw.url, 'GET', '/v1/whoami', { key: k.key })).status).toBe(200);
  });

  it('refuses malformed Authorization headers before any look-up', async () => {
    const k = fake.mint();
    const before = fake.verifyCalls;
    const bad = [
      `Basic ${Buffer.from(`x:${k.key}`).toString('base64')}`,
      k.key,
      'Bearer',
      'Bearer ',
      `Bearer ${k.key.slice(0, -1)}${k.key.endsWith('X') ? 'Y' : 'X'}`, // checksum broken (a last character that differs)
      `Bearer ${k.key}x`,
      `Bearer ${k.key.replace('kw_live', 'kw_prod')}`,
      `Bearer  ${k.key} extra`,
      `Token ${k.key}`,
      'Bearer kw_live_abcdefgh_short',
    ];
    for (const h of bad) {
      const r = await http(gw.url, 'GET', '/v1/whoami', { headers: { authorization: h } });
      expect({ h, status: r.status, code: err(r.body).code }).toEqual({ h, status: 401, code: 'invalid_key' });
    }
    expect(fake.verifyCalls).toBe(before);
    // The scheme is case-insensitive (RFC 7235).
    expect((await http(gw.url, 'GET', '/v1/whoami', { headers: { authorization: `bearer ${k.key}` } })).status).toBe(200);
  });

  it('caches records: a second call does not ask identity; unknown prefixes are cached briefly too', async () => {
    const k = fake.mint();
    await http(gw.url, 'GET', '/v1/whoami', { key: k.key });
    const calls = fake.verifyCalls;
    for (let i = 0; i < 5; i++) expect((await http(gw.url, 'GET', '/v1/whoami', { key: k.key })).status).toBe(200);
    const unknown = mintKey('test');
    for (let i = 0; i < 5; i++) expect((await http(gw.url, 'GET', '/v1/whoami', { key: unknown.key })).status).toBe(401);
    expect(fake.verifyCalls).toBe(calls + 1);
  });

  it('announces itself on the heartbeat subject', async () => {
    const seen: string[] = [];
    const sub = fake.nc.subscribe(GATEWAY_HEARTBEAT, {
      callback: (_e, m) => {
        const hb = GatewayHeartbeat.safeParse(m.json());
        if (hb.success) seen.push(hb.data.gateway_id);
      },
    });
    await eventually(async () => seen.includes(gw.config.GATEWAY_ID), 3_000);
    sub.unsubscribe();
  });

  it('after an acknowledged invalidation, the next request is verified again and refused when revoked', async () => {
    const k = fake.mint();
    expect((await http(gw.url, 'GET', '/v1/whoami', { key: k.key })).status).toBe(200);
    fake.records.set(k.lookupId, { ...k.record, status: 'revoked' });
    // Still cached: identity has not told the gateways yet.
    expect((await http(gw.url, 'GET', '/v1/whoami', { key: k.key })).status).toBe(200);
    const acks = await fake.invalidate([k.lookupId], k.record.key_id, 1);
    expect(acks).toEqual([gw.config.GATEWAY_ID]);
    const r = await http(gw.url, 'GET', '/v1/whoami', { key: k.key });
    expect(r.status).toBe(401);
    expect(err(r.body).code).toBe('key_revoked');
  });

  /** A valid lifecycle event about `k`, published where identity's relay publishes (the second path). */
  const publishKeyEvent = <T extends 'disabled' | 'revoked'>(k: MintedKey, type: T, data: KeyEventDataOf<T>, version: number): void => {
    const event = keyEventEnvelope({
      id: newId('event'),
      type,
      occurred_at: new Date().toISOString(),
      tenant_id: k.record.tenant_id,
      key_id: k.record.key_id,
      prefix: k.prefix,
      version,
      actor: { type: 'key', id: k.record.key_id },
      data,
    } as Omit<KeyEvent, 'schema_version'>);
    fake.nc.publish(eventSubject(type), JSON.stringify(event));
  };

  it('a key event on keyway.keys.> drops that key too (second path), and only that key', async () => {
    const k = fake.mint();
    const other = fake.mint();
    for (const key of [k, other]) expect((await http(gw.url, 'GET', '/v1/whoami', { key: key.key })).status).toBe(200);
    fake.records.set(k.lookupId, { ...k.record, status: 'disabled' });
    publishKeyEvent(k, 'disabled', {}, 2);
    await eventually(async () => (await http(gw.url, 'GET', '/v1/whoami', { key: k.key })).status === 401, 3_000);
    // A valid event drops the prefix it names: the other key is still served from the cache.
    const calls = fake.verifyCalls;
    expect((await http(gw.url, 'GET', '/v1/whoami', { key: other.key })).status).toBe(200);
    expect(fake.verifyCalls).toBe(calls);
  });

  it('a key event drops every secret of the key still in a grace, not only the prefixes it names (gateway missed the direct message)', async () => {
    // Three secrets of one key: rotated twice inside a grace. The event of the revoke names only
    // the current prefix; the oldest secret is cached too and must go as well.
    const oldest = fake.mint();
    const middle = fake.mint(undefined, { key_id: oldest.record.key_id });
    const current = fake.mint(undefined, { key_id: oldest.record.key_id });
    const all = [oldest, middle, current];
    for (const k of all) fake.records.set(k.lookupId, { ...k.record, siblings: all.filter((o) => o !== k).map((o) => o.lookupId) });
    for (const k of all) expect((await http(gw.url, 'GET', '/v1/whoami', { key: k.key })).status).toBe(200);
    for (const k of all) fake.records.set(k.lookupId, { ...fake.records.get(k.lookupId)!, status: 'revoked' });
    publishKeyEvent(current, 'revoked', { reason: null }, 4);
    for (const k of all) await eventually(async () => (await http(gw.url, 'GET', '/v1/whoami', { key: k.key })).status === 401, 3_000);
  });

  it('a verify that started before an invalidation is not cached after it', async () => {
    const k = fake.mint();
    fake.verifyDelayMs = 300;
    const slow = http(gw.url, 'GET', '/v1/whoami', { key: k.key });
    await new Promise((r) => setTimeout(r, 100));
    fake.records.set(k.lookupId, { ...k.record, status: 'revoked' });
    await fake.invalidate([k.lookupId], k.record.key_id, 1);
    fake.verifyDelayMs = 0;
    // The in-flight answer (fetched before the revoke) may serve its own request, but nothing after.
    await slow;
    const r = await http(gw.url, 'GET', '/v1/whoami', { key: k.key });
    expect(err(r.body).code).toBe('key_revoked');
  });

  it('two gateways both acknowledge, and both refuse the key afterwards', async () => {
    const gw2 = await startGateway(infra);
    try {
      const k = fake.mint();
      for (const g of [gw, gw2]) expect((await http(g.url, 'GET', '/v1/whoami', { key: k.key })).status).toBe(200);
      fake.records.set(k.lookupId, { ...k.record, status: 'revoked' });
      const acks = await fake.invalidate([k.lookupId], k.record.key_id, 2);
      expect(acks.sort()).toEqual([gw.config.GATEWAY_ID, gw2.config.GATEWAY_ID].sort());
      for (const g of [gw, gw2]) expect(err((await http(g.url, 'GET', '/v1/whoami', { key: k.key })).body).code).toBe('key_revoked');
    } finally {
      await gw2.close();
    }
  });

  it('answers 503 when identity does not answer a verify', async () => {
    fake.overrides.set('keyway.rpc.identity.keys.verify', 'silent');
    try {
      const r = await http(gw.url, 'GET', '/v1/whoami', { key: mintKey('live').key });
      expect(r.status).toBe(503);
      expect(err(r.body)).toMatchObject({ code: 'unavailable' });
    } finally {
      fake.overrides.delete('keyway.rpc.identity.keys.verify');
    }
  });

  // Last: it kills this file's nats-server.
  it('stops trusting cached keys once NATS has been gone for NATS_STALE_AFTER_MS, and recovers', async () => {
    const k = fake.mint();
    expect((await http(gw.url, 'GET', '/v1/whoami', { key: k.key })).status).toBe(200);
    await infra.nats!.kill();
    const killedAt = Date.now();
    // Within the bound, the cache still serves (a short blip does not take the API down).
    const early = await http(gw.url, 'GET', '/v1/whoami', { key: k.key });
    if (Date.now() - killedAt < 400) expect(early.status).toBe(200);
    await new Promise((r) => setTimeout(r, 600 + 300));
    const r = await http(gw.url, 'GET', '/v1/whoami', { key: k.key });
    expect(r.status).toBe(503);
    expect(err(r.body).code).toBe('unavailable');
    await infra.nats!.startProcess();
    await eventually(async () => (await http(gw.url, 'GET', '/v1/whoami', { key: k.key })).status === 200, 10_000, 100);
  });
});
