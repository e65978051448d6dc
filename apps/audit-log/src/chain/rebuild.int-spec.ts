import { randomBytes } from 'node:crypto';
import { EVENT_SUBJECTS, eventSubject } from '@keyway/contracts';
import { ensureStream, jetStreamContext, type JetStreamContext } from '@keyway/messaging';
import { loadConfig, startService } from '@keyway/runtime';
import { eventually, startInfra, type TestInfra } from '@keyway/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { INestApplication } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { HEADS_SNAPSHOT_SQL, lifecycleEvent, publishKeyEvent, TRAIL_SNAPSHOT_SQL } from '../../test/audit-fixtures';
import { AppModule } from '../app.module';
import { AuditLogEnv, SERVICE, type AuditLogConfig } from '../config';
import { ChainService } from './chain.service';
import { rebuildTrail } from './rebuild';

describe('rebuilding the trail from the stream', () => {
  let infra: TestInfra;
  let nc: NatsConnection;
  let jet: JetStreamContext;
  let config: AuditLogConfig;

  beforeAll(async () => {
    infra = await startInfra('rebuild');
    nc = await connect({ servers: infra.natsUrl });
    jet = await jetStreamContext(nc);
    await ensureStream(jet.jsm, { name: infra.stream, subjects: [EVENT_SUBJECTS], duplicateWindowMs: 10 * 60_000 });
    config = loadConfig(AuditLogEnv, {
      ...infra.env,
      AUDIT_CHAIN_KEY: randomBytes(32).toString('hex'),
      AUDIT_WRITERS: '4',
      AUDIT_BATCH_MAX: '16',
      AUDIT_HEAD_PUBLISH_MS: '20',
    });
  });
  afterAll(async () => {
    await nc?.close();
    await infra?.stop();
  });

  it('comes out identical: the same entries, links and heads, and every published head matches', async () => {
    // The original: two replicas, four writers each, small batches; republishes, a used event
    // from before the usage stream, and a message that never parses, all on the stream.
    const apps: INestApplication[] = [];
    for (let i = 0; i < 2; i++) apps.push(await startService({ name: SERVICE, module: AppModule.forRoot(config), config }));
    const ds = apps[0]!.get(DataSource);
    const tenants = Array.from({ length: 20 }, (_, i) => `ten_rb${i}`);
    const events = Array.from({ length: 600 }, (_, i) => lifecycleEvent(i, { tenant: tenants[(i * 7) % tenants.length]!, mode: i % 4 === 0 ? 'test' : 'live' }));
    for (let i = 0; i < events.length; i += 100) await Promise.all(events.slice(i, i + 100).map((e) => publishKeyEvent(jet.js, e)));
    for (const e of events.filter((_, i) => i % 50 === 0)) await jet.js.publish(eventSubject(e.type), JSON.stringify(e));
    await jet.js.publish(eventSubject('created'), 'not json');
    const used = { ...lifecycleEvent(0, { tenant: 'ten_rb0' }), type: 'used', data: { count: 1, rate_limited: 0, first_at: events[0]!.occurred_at, last_at: events[0]!.occurred_at, scopes_used: null, secret: 'current' } };
    await jet.js.publish(eventSubject('used'), JSON.stringify(used));

    await eventually(async () => Number((await ds.query<Array<{ n: string }>>('SELECT count(*) AS n FROM audit_events WHERE chain_pos IS NOT NULL'))[0]?.n) === 600, 30_000, 50);
    const chain = apps[0]!.get(ChainService);
    for (const t of tenants) await eventually(async () => (await chain.verify(t)).verification.verified, 10_000, 50);
    const published = await Promise.all(tenants.map(async (t) => (await chain.verify(t)).verification));
    const trail = await ds.query<unknown[]>(TRAIL_SNAPSHOT_SQL);
    const heads = await ds.query<unknown[]>(HEADS_SNAPSHOT_SQL);
    for (const app of apps) await app.close();

    const target = { ...config, DATABASE_URL: `${infra.databaseUrl}_rb` };
    const result = await rebuildTrail(target, { timeoutMs: 60_000 });
    expect(result).toMatchObject({ tenants: 20, entries: 600, mismatches: [] });

    const rebuilt = await startService({ name: SERVICE, module: AppModule.forRoot(target), config: target });
    try {
      const rds = rebuilt.get(DataSource);
      expect(await rds.query(TRAIL_SNAPSHOT_SQL)).toEqual(trail);
      expect(await rds.query(HEADS_SNAPSHOT_SQL)).toEqual(heads);
      const rchain = rebuilt.get(ChainService);
      expect(await Promise.all(tenants.map(async (t) => (await rchain.verify(t)).verification))).toEqual(published);
      // The rebuild's consumer is gone; the service's own durable was never touched.
      await expect(jet.jsm.consumers.info(infra.stream, result.durable)).rejects.toThrow(/not found/);
    } finally {
      await rebuilt.close();
    }
    // A database that holds a trail is never rebuilt into.
    await expect(rebuildTrail(target)).rejects.toThrow(/is not empty/);
  });
});
