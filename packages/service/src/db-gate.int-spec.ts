import { serviceDatabaseUrl } from '@keyway/database';
import { BaseEnv, httpAddress, loadConfig, startService } from '@keyway/runtime';
import { eventually, pgAdminUrl, startInfra, type TestInfra } from '@keyway/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Controller, Inject, Module, type DynamicModule } from '@nestjs/common';
import { MessagePattern } from '@nestjs/microservices';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { serviceModules } from './service-modules';

const SERVICE = 'gatetest';
const SUBJECT = 'keyway.test.dbgate.who';
const REPLICA = Symbol('REPLICA');
type NestFastifyApplication = Awaited<ReturnType<typeof startService>>;

/** Answers which replica it is, after a round trip to its database (as every real handler does). */
@Controller()
class WhoController {
  constructor(
    @Inject(REPLICA) private readonly replica: string,
    private readonly ds: DataSource,
  ) {}

  @MessagePattern(SUBJECT)
  async who(): Promise<{ replica: string }> {
    await this.ds.query('SELECT 1');
    return { replica: this.replica };
  }
}

@Module({})
class ReplicaModule {
  static forRoot(replica: string, config: BaseEnv): DynamicModule {
    return {
      module: ReplicaModule,
      imports: serviceModules({ service: SERVICE, config, entities: [], migrations: [] }),
      controllers: [WhoController],
      providers: [{ provide: REPLICA, useValue: replica }],
    };
  }
}

describe('a replica whose database is down leaves the queue group, and joins again when it answers', () => {
  let infra: TestInfra;
  let nc: NatsConnection;
  let admin: Client;
  const apps: NestFastifyApplication[] = [];
  let deadDb: string;
  let seq = 0;

  const start = async (replica: string, base: string): Promise<NestFastifyApplication> => {
    const config = loadConfig(BaseEnv, { ...infra.env, DATABASE_URL: base });
    const app = await startService({
      name: SERVICE,
      module: ReplicaModule.forRoot(replica, config),
      config,
      dbGate: { everyMs: 100, timeoutMs: 500, failuresToLeave: 2 },
    });
    apps.push(app);
    return app;
  };
  /** Who answered each of `n` requests; an error or a timeout is its code. */
  const ask = async (n: number): Promise<string[]> =>
    Promise.all(
      Array.from({ length: n }, async () => {
        try {
          const m = await nc.request(SUBJECT, JSON.stringify({ pattern: SUBJECT, data: {}, id: String(++seq) }), { timeout: 2_000 });
          const r = m.json<{ response?: { replica: string }; err?: { code: string } }>();
          return r.response?.replica ?? `err:${r.err?.code}`;
        } catch (err) {
          return `fail:${(err as Error).message}`;
        }
      }),
    );
  const ready = async (app: NestFastifyApplication): Promise<number> => (await fetch(`${httpAddress(app)}/health/ready`)).status;

  beforeAll(async () => {
    infra = await startInfra('dbgate');
    nc = await connect({ servers: infra.natsUrl });
    admin = new Client({ connectionString: pgAdminUrl() });
    await admin.connect();
  });
  afterAll(async () => {
    if (deadDb) await admin.query(`ALTER DATABASE "${deadDb}" ALLOW_CONNECTIONS true`).catch(() => undefined);
    for (const app of apps) await app.close().catch(() => undefined);
    await nc?.close();
    await admin?.end();
    await infra?.stop();
  });

  it('every request goes to the healthy replica while the other one is cut off from its database', async () => {
    const a = await start('a', `${infra.databaseUrl}_ra`);
    const b = await start('b', `${infra.databaseUrl}_rb`);
    deadDb = new URL(serviceDatabaseUrl(`${infra.databaseUrl}_ra`, SERVICE)).pathname.slice(1);
    // Both take a share while both databases answer.
    expect(new Set(await ask(60))).toEqual(new Set(['a', 'b']));
    expect([await ready(a), await ready(b)]).toEqual([200, 200]);

    // Replica a's database stops taking connections, and its open ones are cut.
    await admin.query(`ALTER DATABASE "${deadDb}" ALLOW_CONNECTIONS false`);
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [deadDb]);
    await eventually(async () => (await ready(a)) === 503, 5_000, 100);
    // After the cut-over, no request is handed to a: each one is answered, by b.
    await eventually(async () => (await ask(20)).every((r) => r === 'b'), 5_000, 100);
    const during = await ask(200);
    expect(during.filter((r) => r !== 'b')).toEqual([]);
    expect(await ready(b)).toBe(200);

    // The database answers again: a is ready and takes its share again.
    await admin.query(`ALTER DATABASE "${deadDb}" ALLOW_CONNECTIONS true`);
    await eventually(async () => (await ready(a)) === 200, 5_000, 100);
    await eventually(async () => (await ask(40)).includes('a'), 5_000, 100);
    const after = await ask(60);
    expect(after.filter((r) => r !== 'a' && r !== 'b')).toEqual([]);
    expect(new Set(after)).toEqual(new Set(['a', 'b']));
  });

  it('with both databases down, a caller is told at once that nobody answers rather than waiting out its timeout', async () => {
    const dbB = new URL(serviceDatabaseUrl(`${infra.databaseUrl}_rb`, SERVICE)).pathname.slice(1);
    try {
      for (const db of [deadDb, dbB]) {
        await admin.query(`ALTER DATABASE "${db}" ALLOW_CONNECTIONS false`);
        await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [db]);
      }
      await eventually(async () => (await ask(5)).every((r) => /no responders|503/i.test(r)), 5_000, 100);
    } finally {
      for (const db of [deadDb, dbB]) await admin.query(`ALTER DATABASE "${db}" ALLOW_CONNECTIONS true`);
    }
    await eventually(async () => (await ask(10)).every((r) => r === 'a' || r === 'b'), 5_000, 100);
  });
});
