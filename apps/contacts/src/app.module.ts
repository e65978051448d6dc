import { serviceDatabaseUrl, serviceDataSourceOptions, ensureDatabase } from '@keyway/database';
import { HealthModule, loggerParams, NATS_CONNECTION, NatsModule } from '@keyway/runtime';
import { Module, type DynamicModule } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { NatsConnection } from '@nats-io/transport-node';
import { LoggerModule } from 'nestjs-pino';
import { DataSource } from 'typeorm';
import { SERVICE, type ContactsConfig } from './config';
import { AccountEntity } from './accounts/account.entity';
import { AccountsModule } from './accounts/accounts.module';
import { ContactEntity } from './contacts/contact.entity';
import { ContactsModule } from './contacts/contacts.module';
import { migrations } from './migrations';

@Module({})
export class AppModule {
  static forRoot(config: ContactsConfig): DynamicModule {
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
              ...serviceDataSourceOptions({ url, entities: [ContactEntity, AccountEntity], migrations }),
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
        AccountsModule,
        ContactsModule,
      ],
    };
  }
}
