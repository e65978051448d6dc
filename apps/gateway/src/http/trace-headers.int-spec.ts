import { Rpc } from '@keyway/contracts';
import { startInfra, type TestInfra } from '@keyway/testing';
import type { Subscription } from '@nats-io/transport-node';
import { FakeServices, http, startGateway, type RunningGateway } from '../../test/fakes';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

/**
 * Every call the gateway makes for a request carries its trace in the `traceparent` NATS header,
 * not only the `/v1` routes': the operator's routes and the sign-in routes too (issue 13, traces).
 */
describe('gateway: the request trace reaches the NATS headers of every call it makes', () => {
  let infra: TestInfra;
  let fake: FakeServices;
  let gw: RunningGateway;
  const seen = new Map<string, string | undefined>();
  const subs: Subscription[] = [];

  beforeAll(async () => {
    infra = await startInfra('gateway_trace_headers');
    fake = await FakeServices.start(infra.natsUrl);
    for (const subject of [Rpc.tenantsCreate, Rpc.sessionsCreate]) {
      // A second, plain subscriber sees each request as the fake answers it.
      subs.push(fake.nc.subscribe(subject, { callback: (_e, m) => void seen.set(subject, m.headers?.get('traceparent')) }));
    }
    await fake.nc.flush();
    gw = await startGateway(infra);
  });
  afterAll(async () => {
    for (const s of subs) s.unsubscribe();
    await gw?.close();
    await fake?.stop();
    await infra?.stop();
  });

  it.each([
    ['POST /admin/v1/tenants', Rpc.tenantsCreate, () => http(gw.adminUrl, 'POST', '/admin/v1/tenants', { headers: { authorization: `Bearer ${gw.config.KEYWAY_ADMIN_TOKEN}`, traceparent: TRACEPARENT }, body: { name: 'Traced' } })],
    ['POST /auth/v1/session', Rpc.sessionsCreate, () => http(gw.url, 'POST', '/auth/v1/session', { headers: { traceparent: TRACEPARENT }, body: { email: 'a@b.test', password: 'some-password' } })],
  ])('%s', async (_name, subject, call) => {
    await call();
    const header = seen.get(subject);
    expect(header).toMatch(new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-01$`));
  });
});
