import { dropDatabases, dropRoles, provisionServiceDatabase, serviceRoleUrl } from '@keyway/database';
import { natsServerBinary, PrivateNats } from './nats-server';
import { portAnswers } from './ports';

/**
 * The test harness. Each jest run has an id (set once by the global setup); each test file asks
 * for its own infrastructure with a label, and gets:
 *  - a database base URL `keyway_t<run>_<label>` (each service derives `<base>_<service>` from it),
 *  - its own nats-server with JetStream (a child process on a free port, its own store dir), so
 *    stream names and subjects never collide with another file or run, and a test can restart it,
 *  - a Redis key prefix.
 * Local servers are used when they answer (our machines and CI); otherwise, when a Docker engine
 * answers, testcontainers starts them.
 */
export const runId = (): string => {
  if (!process.env.KEYWAY_TEST_RUN) process.env.KEYWAY_TEST_RUN = `${Date.now().toString(36)}${process.pid.toString(36)}`;
  return process.env.KEYWAY_TEST_RUN;
};

const DEFAULT_PG = 'postgres://postgres@127.0.0.1:5432/postgres';
export const pgAdminUrl = (): string => process.env.TEST_DATABASE_URL ?? process.env.KEYWAY_TEST_PG ?? DEFAULT_PG;

export interface TestInfra {
  label: string;
  /** Base database URL; services derive `<base>_<service>`. */
  databaseUrl: string;
  natsUrl: string;
  redisUrl: string | undefined;
  redisPrefix: string;
  stream: string;
  nats: PrivateNats | undefined;
  /** Environment for a service started by this test (in-process or as a child process). */
  env: Record<string, string>;
  /**
   * Gives `service` its own role owning its database (packages/database roles.ts), named after
   * this run's database so no other run shares it, and returns the DATABASE_URL it connects with.
   */
  provisionRole(service: string): Promise<string>;
  /** The admin's URL of the same base (what provisioning and clean-up connect with). */
  adminDatabaseUrl: string;
  stop(): Promise<void>;
}

async function dockerAnswers(): Promise<boolean> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

export async function startInfra(label: string): Promise<TestInfra> {
  const safeLabel = label.toLowerCase().replace(/[^a-z0-9]/g, '_').slice(0, 20);
  const run = runId();
  const stopFns: Array<() => Promise<unknown>> = [];

  let pgUrl = pgAdminUrl();
  const pg = new URL(pgUrl);
  if (!(await portAnswers(pg.hostname, Number(pg.port || 5432)))) {
    if (!(await dockerAnswers())) {
      throw new Error(`Postgres does not answer at ${pg.host} and no Docker engine answers for testcontainers`);
    }
    const { GenericContainer, Wait } = await import('testcontainers');
    const c = await new GenericContainer('postgres:16-alpine')
      .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: 'trust' })
      .withExposedPorts(5432)
      .withWaitStrategy(Wait.forLogMessage(/ready to accept connections/, 2))
      .start();
    stopFns.push(() => c.stop());
    pgUrl = `postgres://postgres@${c.getHost()}:${c.getMappedPort(5432)}/postgres`;
  }
  const dbBase = `keyway_t${run}_${safeLabel}`;
  const databaseUrl = Object.assign(new URL(pgUrl), { pathname: `/${dbBase}` }).toString();
  // The trailing `_`: label `relay` must not take `relaycrash`'s databases with it. Roles after
  // their databases: a role that owns one cannot be dropped.
  stopFns.push(() => dropRoles(pgUrl, `${dbBase}_`));
  stopFns.push(() => dropDatabases(pgUrl, `${dbBase}_`));

  let nats: PrivateNats | undefined;
  let natsUrl: string;
  if (natsServerBinary()) {
    nats = await PrivateNats.start();
    natsUrl = nats.url;
    const n = nats;
    stopFns.push(() => n.stop());
  } else if (await dockerAnswers()) {
    const { GenericContainer, Wait } = await import('testcontainers');
    const c = await new GenericContainer('nats:2.10-alpine')
      .withCommand(['-js'])
      .withExposedPorts(4222)
      .withWaitStrategy(Wait.forLogMessage(/Server is ready/))
      .start();
    stopFns.push(() => c.stop());
    natsUrl = `nats://${c.getHost()}:${c.getMappedPort(4222)}`;
  } else {
    throw new Error('Neither nats-server nor a Docker engine is available for the tests');
  }

  const redisUrl = (await portAnswers('127.0.0.1', 6379)) ? (process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379') : undefined;
  const stream = `KEYWAY_T${run}_${safeLabel}`.toUpperCase();
  const redisPrefix = `keyway:t${run}:${safeLabel}:`;
  const env: Record<string, string> = {
    DATABASE_URL: databaseUrl,
    NATS_URL: natsUrl,
    KEYWAY_STREAM: stream,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    HEALTH_PORT: '0',
    REDIS_PREFIX: redisPrefix,
    ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
  };
  return {
    label: safeLabel,
    databaseUrl,
    natsUrl,
    redisUrl,
    redisPrefix,
    stream,
    nats,
    env,
    adminDatabaseUrl: databaseUrl,
    async provisionRole(service) {
      await provisionServiceDatabase(databaseUrl, service);
      return serviceRoleUrl(databaseUrl, service);
    },
    async stop() {
      for (const fn of stopFns.reverse()) await fn().catch(() => undefined);
    },
  };
}
