import { eventSubject, EVENT_SUBJECTS, newId, STREAMS, USAGE_SUBJECT } from '@keyway/contracts';
import { ensureStream, jetStreamContext, publishEvent, type JetStreamContext } from '@keyway/messaging';
import { loadConfig, startService } from '@keyway/runtime';
import { eventually, startInfra, type TestInfra } from '@keyway/testing';
import type { INestApplication } from '@nestjs/common';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { AppModule } from '../app.module';
import { IdentityEnv, SERVICE } from '../config';
import { LAST_USED_DURABLE } from '../last-used/last-used.consumer';

/**
 * An identity of this version booting on a NATS that an older version set up: `KEYWAY` captured
 * `keyway.keys.>` and the last-used projection read `keyway.keys.used` from it. The relay narrows
 * `KEYWAY` to the lifecycle subjects (the old durable, whose filter it would no longer hold, is
 * retired first), creates `KEYWAY_USAGE` and `KEYWAY_DLQ`, and the projection reads usage there.
 */
describe('identity boots on streams an older version configured', () => {
  let infra: TestInfra;
  let nc: NatsConnection;
  let jet: JetStreamContext;
  let app: INestApplication | undefined;

  beforeAll(async () => {
    infra = await startInfra('streamsupgrade');
    nc = await connect({ servers: infra.natsUrl });
    jet = await jetStreamContext(nc);
  });
  afterAll(async () => {
    await app?.close();
    await nc?.close();
    await infra?.stop();
  });

  it('narrows KEYWAY, retires the old durable, and the projection reads KEYWAY_USAGE', async () => {
    await ensureStream(jet.jsm, { name: infra.stream, subjects: [EVENT_SUBJECTS], duplicateWindowMs: 10 * 60_000 });
    await jet.jsm.consumers.add(infra.stream, { durable_name: LAST_USED_DURABLE, filter_subject: eventSubject('used') });
    const stored: { id: string } = { id: newId('event') }; // a usage message of the old layout, stored in KEYWAY
    await publishEvent(jet.js, eventSubject('used'), stored);

    const config = loadConfig(IdentityEnv, { ...infra.env, RELAY_POLL_MS: '50' });
    app = await startService({ name: SERVICE, module: AppModule.forRoot(config), config });

    const keys = await jet.jsm.streams.info(infra.stream);
    expect(keys.config.subjects).toEqual([...STREAMS.keys.subjects]);
    expect(keys.config.subjects).not.toContain(USAGE_SUBJECT);
    await expect(jet.jsm.consumers.info(infra.stream, LAST_USED_DURABLE)).rejects.toThrow();
    const usage = await jet.jsm.streams.info(STREAMS.usage.name);
    expect(usage.config.subjects).toEqual([USAGE_SUBJECT]);
    expect(usage.config.max_age).toBe(35 * 24 * 3_600 * 1e9);
    expect((await jet.jsm.streams.info(STREAMS.dlq.name)).config.subjects).toEqual([...STREAMS.dlq.subjects]);
    // A used event now lands in KEYWAY_USAGE and the projection's durable takes it.
    const notAnEvent: { id: string } = { id: newId('event') }; // dead-lettered: it is no used event
    await publishEvent(jet.js, USAGE_SUBJECT, notAnEvent);
    await eventually(async () => (await jet.jsm.consumers.info(STREAMS.usage.name, LAST_USED_DURABLE)).num_pending === 0);
    expect((await jet.jsm.streams.info(infra.stream)).state.messages).toBe(1);
  });
});
