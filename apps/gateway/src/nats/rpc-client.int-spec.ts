import { startInfra, type TestInfra } from '@keyway/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { RpcClient } from './rpc-client';

const SUBJECT = 'keyway.test.gateway.echo';

describe('RpcClient and the size of the bus', () => {
  let infra: TestInfra;
  let nc: NatsConnection;
  let client: RpcClient;
  let received = 0;

  beforeAll(async () => {
    infra = await startInfra('gateway_rpc_client');
    nc = await connect({ servers: infra.natsUrl });
    nc.subscribe(SUBJECT, {
      callback: (_err, msg) => {
        received++;
        msg.respond(JSON.stringify({ response: { bytes: msg.data.length }, isDisposed: true }));
      },
    });
    await nc.flush();
    // A long timeout: the answer must come from the size check, never from waiting.
    client = new RpcClient(nc, 'gw_test', 60_000);
  });
  afterAll(async () => {
    client?.close();
    await nc?.close();
    await infra?.stop();
  });

  it('a request whose envelope is over max_payload is payload_too_large, without being sent', async () => {
    const max = nc.info!.max_payload;
    const before = received;
    const r = await client.call(SUBJECT, { body: 'x'.repeat(max) });
    expect(r).toEqual({ ok: false, error: { error: expect.any(String), code: 'payload_too_large' } });
    // Just over: the whole message, pattern and id included, is what counts.
    const overhead = JSON.stringify({ pattern: SUBJECT, data: { body: '' }, id: 'gw_test.1' }).length;
    const edge = await client.call(SUBJECT, { body: 'x'.repeat(max - overhead + 10) });
    expect(edge.ok).toBe(false);
    await nc.flush();
    expect(received).toBe(before);
  });

  it('one that fits still goes through', async () => {
    const max = nc.info!.max_payload;
    const r = await client.call(SUBJECT, { body: 'x'.repeat(max - 200) });
    expect(r.ok).toBe(true);
    expect((r as { response: { bytes: number } }).response.bytes).toBeLessThanOrEqual(max);
  });
});
