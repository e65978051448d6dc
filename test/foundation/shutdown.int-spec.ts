import { Rpc } from '@keyway/contracts';
import { ServiceProcess, startInfra, type TestInfra } from '@keyway/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';

/**
 * Graceful shutdown: on SIGTERM a service stops taking requests but answers every one it has
 * already received, then drains NATS and exits 0.
 */
describe('graceful shutdown', () => {
  let infra: TestInfra;
  let service: ServiceProcess | undefined;
  let nc: NatsConnection | undefined;
  beforeAll(async () => {
    infra = await startInfra('shutdown');
  });
  afterAll(async () => {
    await service?.kill();
    await nc?.close();
    await infra.stop();
  });

  it('answers the requests in flight when SIGTERM arrives', async () => {
    service = new ServiceProcess('contacts', { ...infra.env, LOG_LEVEL: 'warn' });
    await service.start();
    nc = await connect({ servers: infra.natsUrl });
    const ctx = { tenant_id: 'ten_shutdown', actor: { type: 'key', id: 'key_x' }, request_id: 'r', scopes: [] };
    const conn = nc;
    const inFlight = Array.from({ length: 200 }, (_, i) =>
      conn
        .request(Rpc.contactsCreate, JSON.stringify({ pattern: Rpc.contactsCreate, id: String(i), data: { ctx, body: { type: 'lead', name: `n${i}`, email: `c${i}@example.com` } } }), { timeout: 10_000 })
        .then((m) => (m.json<{ response?: unknown }>().response ? 'answered' : 'error'))
        .catch((err: Error) => `lost: ${err.message}`),
    );
    await conn.flush(); // every request has reached the server before the signal
    const exit = service.kill('SIGTERM');
    const results = await Promise.all(inFlight);
    await exit;
    expect(results.filter((r) => r !== 'answered')).toEqual([]);
    expect(service.output).not.toMatch(/"level":50/);
  });
});
