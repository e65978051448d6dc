import { newId } from '@keyway/contracts';
import { openServiceDatabase, serviceDatabaseUrl } from '@keyway/database';
import { jetStreamContext } from '@keyway/messaging';
import { eventually, ServiceProcess, startInfra, type TestInfra } from '@keyway/testing';
import { connect } from '@nats-io/transport-node';
import { appendToStream } from '../../apps/identity/test/append-to-stream';
import { migrations } from '../../apps/identity/src/migrations';

/**
 * The relay is SIGKILLed over and over (and NATS restarted once) while 5,000 events are written:
 * afterwards JetStream holds each exactly once and the audit trail has each exactly once.
 */
describe('outbox relay survives kill -9 and a NATS restart', () => {
  let infra: TestInfra;
  let audit: ServiceProcess | undefined;
  let identity: ServiceProcess | undefined;
  const cleanup: Array<() => Promise<unknown>> = [];
  beforeAll(async () => {
    infra = await startInfra('relaycrash');
  });
  afterAll(async () => {
    await identity?.kill();
    for (const fn of cleanup) await fn().catch(() => undefined);
    await audit?.kill('SIGTERM');
    await infra.stop();
  });

  it('5,000 events, none lost, none duplicated', async () => {
    const env = { ...infra.env, LOG_LEVEL: 'warn', RELAY_POLL_MS: '20' };
    identity = new ServiceProcess('identity', env);
    await identity.start(); // creates the database, runs migrations, ensures the stream
    const ds = await openServiceDatabase({ url: serviceDatabaseUrl(infra.databaseUrl, 'identity'), entities: [], migrations });
    cleanup.push(() => ds.destroy());

    const TOTAL = 5_000;
    const ids: string[] = [];
    let writing = true;
    const writer = (async () => {
      const streams = Array.from({ length: TOTAL / 10 }, () => newId('key'));
      for (let i = 0; i < streams.length; i += 10) {
        await Promise.all(
          streams.slice(i, i + 10).map((stream) =>
            ds.transaction(async (tx) => {
              const stored = await appendToStream(
                tx,
                stream,
                0,
                Array.from({ length: 10 }, (_, n) => ({ type: n % 2 ? 'disabled' : 'enabled', prefix: 'kw_live_crashtst', data: {} }) as const),
                { tenant_id: 'ten_crash', actor: { type: 'system', id: 'test' }, now: new Date() },
              );
              ids.push(...stored.map((s) => s.id));
            }),
          ),
        );
        await new Promise((r) => setTimeout(r, 60));
      }
      writing = false;
    })();

    let kills = 0;
    let natsRestarted = false;
    while (writing || kills < 5) {
      await new Promise((r) => setTimeout(r, 150 + Math.random() * 300));
      await identity.kill('SIGKILL');
      kills++;
      if (!natsRestarted && kills === 3) {
        await infra.nats!.restart();
        natsRestarted = true;
      }
      identity = new ServiceProcess('identity', env);
      await identity.start();
    }
    await writer;
    expect(kills).toBeGreaterThanOrEqual(5);
    expect(ids).toHaveLength(TOTAL);

    const nc = await connect({ servers: infra.natsUrl });
    cleanup.push(() => nc.close());
    const { jsm, js } = await jetStreamContext(nc);
    await eventually(async () => (await jsm.streams.info(infra.stream)).state.messages >= TOTAL, 60_000, 200);
    await new Promise((r) => setTimeout(r, 500)); // anything extra would show up now
    expect((await jsm.streams.info(infra.stream)).state.messages).toBe(TOTAL);
    const seen = new Set<string>();
    const consumer = await js.consumers.get(infra.stream);
    const batch = await consumer.fetch({ max_messages: TOTAL, expires: 5_000 });
    for await (const m of batch) {
      seen.add(m.headers?.get('Nats-Msg-Id') ?? '');
      if (seen.size >= TOTAL) break;
    }
    expect(ids.every((id) => seen.has(id))).toBe(true);

    // The audit trail: the audit-log service, as a process of its own, consumes the stream; each
    // event once. Read straight from its database, as an operator would check it.
    audit = new ServiceProcess('audit-log', { ...infra.env, LOG_LEVEL: 'warn' });
    await audit.start();
    const auditDs = await openServiceDatabase({ url: serviceDatabaseUrl(infra.databaseUrl, 'audit-log'), entities: [], migrations: [] });
    cleanup.push(() => auditDs.destroy());
    await eventually(async () => ((await auditDs.query(`SELECT count(*)::int AS n FROM audit_events`)) as [{ n: number }])[0].n >= TOTAL, 60_000, 200);
    const [{ n, distinct }] = (await auditDs.query(`SELECT count(*)::int AS n, count(DISTINCT id)::int AS distinct FROM audit_events`)) as [{ n: number; distinct: number }];
    expect(n).toBe(TOTAL);
    expect(distinct).toBe(TOTAL);

    await identity.kill('SIGTERM');
    identity = undefined;
  }, 180_000);
});
