import { serviceDatabaseUrl, serviceDataSourceOptions, ensureDatabase } from '@keyway/database';
import { HealthModule, loggerParams, NATS_CONNECTION, NatsModule } from '@keyway/runtime';
import { Module, type DynamicModule } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { NatsConnection } from '@nats-io/transport-node';
import { LoggerModule } from 'nestjs-pino';
import { DataSource } from 'typeorm';
import { SERVICE, type JourneysConfig } from './config';
import { ConversionEntity, JourneyEntity, TouchpointEntity } from './journeys/journey.entity';
import { JourneysModule } from './journeys/journeys.module';
import { migrations } from './migrations';

@Module({})
export class AppModule {
  static forRoot(config: JourneysConfig): DynamicModule {
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
              ...serviceDataSourceOptions({ url, entities: [JourneyEntity, TouchpointEntity, ConversionEntity], migrations }),
              migrationsRun: true,
              migrationsTransactionMode: 'all' as const,
            };
          },
        }),
        HealthModule.forChecks({
          inject: [DataSource, NATS_CONNECTION],
          useFactory: (ds: DataSource, nc: NatsConnection) => ({
            database: () => ds.query('SELECT 1'),
            nats: () => nc.flush(),
          }),
        }),
        JourneysModule,
      ],
    };
  }
}
