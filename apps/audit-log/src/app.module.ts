import { ensureDatabase, serviceDatabaseUrl, serviceDataSourceOptions } from '@keyway/database';
import { HealthModule, loggerParams, NATS_CONNECTION, NatsModule } from '@keyway/runtime';
import { Module, type DynamicModule } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { NatsConnection } from '@nats-io/transport-node';
import { LoggerModule } from 'nestjs-pino';
import { DataSource } from 'typeorm';
import { AuditEventEntity } from './audit/audit-event.entity';
import { AuditIngestService } from './audit/audit-ingest.service';
import { AuditModule } from './audit/audit.module';
import { SERVICE, type AuditLogConfig } from './config';
import { migrations } from './migrations';

@Module({})
export class AppModule {
  static forRoot(config: AuditLogConfig): DynamicModule {
    const url = serviceDatabaseUrl(config.DATABASE_URL, SERVICE);
    return {
      module: AppModule,
      imports: [
        LoggerModule.forRoot(loggerParams(SERVICE, config.LOG_LEVEL)),
        NatsModule.forRoot(config.NATS_URL, SERVICE),
        TypeOrmModule.forRootAsync({
          useFactory: async () => {
            await ensureDatabase(url);
            return {
              // Room for every writer plus the log queries next to them.
              ...serviceDataSourceOptions({ url, entities: [AuditEventEntity], migrations, poolSize: config.AUDIT_WRITERS + 8 }),
              migrationsRun: true,
              migrationsTransactionMode: 'all' as const,
            };
          },
        }),
        AuditModule.forRoot(config),
        HealthModule.forChecks({
          inject: [DataSource, NATS_CONNECTION, AuditIngestService],
          useFactory: (ds: DataSource, nc: NatsConnection, ingest: AuditIngestService) => ({
            database: () => ds.query('SELECT 1'),
            nats: () => nc.flush(),
            consumer: async () => ingest.assertConsuming(),
          }),
        }),
      ],
    };
  }
}
