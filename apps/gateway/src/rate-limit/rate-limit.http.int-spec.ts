import { startInfra, type TestInfra } from '@keyway/testing';
import { FakeServices, http, startGateway, type RunningGateway } from '../../test/fakes';

/**
 * The rate-limit headers as a client sees them, through a real gateway (fake identity), with the
 * limits in memory and on Redis.
 */
describe('rate-limit headers at the edge', () => {
  let infra: TestInfra;
  let fake: FakeServices;
  const gateways: Array<[string, RunningGateway]> = [];

  beforeAll(async () => {
    infra = await startInfra('gateway_rl_headers');
    fake = await FakeServices.start(infra.natsUrl);
    gateways.push(['memory', await startGateway(infra, { REDIS_URL: '' })]);
    if (infra.redisUrl) gateways.push(['redis', await startGateway(infra, { REDIS_URL: infra.redisUrl, REDIS_PREFIX: `keyway:test:${Date.now()}:` })]);
  });
  afterAll(async () => {
    for (const [, gw] of gateways) await gw.close();
    await fake?.stop();
    await infra?.stop();
  });

  it('runs on Redis too (Redis answers on this machine)', () => {
    expect(gateways.map(([name]) => name)).toEqual(['memory', 'redis']);
  });

  it.each(['memory', 'redis'])('%s: an admitted call that spends the second and the minute names the minute, and the next is refused for as long', async (name) => {
    const gw = gateways.find(([n]) => n === name)?.[1];
    if (!gw) return;
    const k = fake.mint(['contacts:read'], { override: { burst_per_second: 3, per_minute: 3 } });
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await http(gw.url, 'GET', '/v1/whoami', { key: k.key }));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    const last = answers[2]!;
    // Today's fixed windows said `Reset: 1` here (the shortest of the two spent windows).
    expect(last.headers.get('ratelimit-limit')).toBe('3');
    expect(last.headers.get('ratelimit-remaining')).toBe('0');
    expect(Number(last.headers.get('ratelimit-reset'))).toBeGreaterThan(50);
    expect(last.headers.get('ratelimit-policy')).toBe('"burst_per_second";q=3;w=1, "per_minute";q=3;w=60, "per_hour";q=1000000;w=3600, "daily";q=10000000;w=86400');
    expect(last.headers.get('ratelimit')).toMatch(
      /^"burst_per_second";r=\d;t=1, "per_minute";r=0;t=(5[1-9]|60), "per_hour";r=999997;t=(35[5-9]\d|3600), "daily";r=9999997;t=\d+$/,
    );
    expect(answers[0]!.headers.get('ratelimit')).toMatch(/^"burst_per_second";r=2;t=1, "per_minute";r=2;t=/);

    const refused = await http(gw.url, 'GET', '/v1/whoami', { key: k.key });
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(50);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused.body).toEqual({ error: expect.any(String), code: 'rate_limited', window: 'per_minute', limit: 3, remaining: 0, retry_after: retryAfter });
    expect(refused.headers.get('ratelimit-reset')).toBe(String(retryAfter));
    expect(refused.headers.get('ratelimit-policy')).toBe(last.headers.get('ratelimit-policy'));
    expect(refused.headers.get('ratelimit')).toMatch(new RegExp(`"per_minute";r=0;t=${retryAfter}, `));
  });
});
