import { ensureDatabase, runMigrationsLocked, serviceDatabaseUrl, serviceDataSourceOptions } from '@keyway/database';
import { HealthModule, loggerParams, NATS_CONNECTION, NatsModule, type BaseEnv, type ReadinessChecks } from '@keyway/runtime';
import type { DynamicModule } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { NatsConnection } from '@nats-io/transport-node';
import { LoggerModule } from 'nestjs-pino';
import { DataSource, type MixedList } from 'typeorm';

export interface ServiceModulesOptions {
  service: string;
  config: BaseEnv;
  entities: MixedList<Function | string>;
  migrations: MixedList<Function | string>;
  poolSize?: number;
  /** Readiness checks beyond the database and NATS, built from the service's own providers. */
  checks?: { inject: Array<string | symbol | Function>; useFactory: (...deps: never[]) => ReadinessChecks };
}

/**
 * What every service with a database imports: pino logs, its own NATS connection, its own database
 * (created if missing, checked-in migrations applied at boot in one transaction, `synchronize`
 * off) and /health with the database and NATS as readiness checks. A package of its own: not in
 * @keyway/runtime, so that the gateway, which has no database, does not load TypeORM; not in
 * @keyway/database, which is Postgres alone and has no Nest in it.
 */
export function serviceModules(opts: ServiceModulesOptions): DynamicModule[] {
  const url = serviceDatabaseUrl(opts.config.DATABASE_URL, opts.service);
  const extra = opts.checks;
  return [
    LoggerModule.forRoot(loggerParams(opts.service, opts.config.LOG_LEVEL)),
    NatsModule.forRoot(opts.config, opts.service),
    TypeOrmModule.forRootAsync({
      useFactory: async () => {
        await ensureDatabase(url);
        return serviceDataSourceOptions({ url, entities: opts.entities, migrations: opts.migrations, ...(opts.poolSize ? { poolSize: opts.poolSize } : {}) });
      },
      // Migrations one replica at a time (an advisory lock), then the app.
      dataSourceFactory: async (options) => {
        const ds = await new DataSource(options!).initialize();
        await runMigrationsLocked(ds, url);
        return ds;
      },
    }),
    HealthModule.forChecks({
      inject: [DataSource, NATS_CONNECTION, ...(extra?.inject ?? [])],
      useFactory: (ds: DataSource, nc: NatsConnection, ...rest: never[]) => ({
        database: () => ds.query('SELECT 1'),
        nats: () => nc.flush(),
        ...(extra ? extra.useFactory(...rest) : {}),
      }),
    }),
  ];
}
