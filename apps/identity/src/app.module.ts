import { serviceDatabaseUrl } from '@keyway/database';
import { serviceModules } from '@keyway/service';
import { Module, type DynamicModule } from '@nestjs/common';
import { IDENTITY_CONFIG, IDENTITY_DATABASE_URL, SERVICE, type IdentityConfig } from './config';
import { KeysModule } from './keys/keys.module';
import { LastUsedModule } from './last-used/last-used.module';
import { migrations } from './migrations';
import { RelayModule } from './relay/relay.module';
import { SessionsModule } from './sessions/sessions.module';
import { TenantsModule } from './tenants/tenants.module';
import { UsersModule } from './users/users.module';

/** The identity service: one module per feature; the config is global to them. */
@Module({})
export class AppModule {
  static forRoot(config: IdentityConfig): DynamicModule {
    const url = serviceDatabaseUrl(config.DATABASE_URL, SERVICE);
    const providers = [
      { provide: IDENTITY_CONFIG, useValue: config },
      { provide: IDENTITY_DATABASE_URL, useValue: url },
    ];
    return {
      module: AppModule,
      global: true,
      imports: [...serviceModules({ service: SERVICE, config, entities: [], migrations }), KeysModule, TenantsModule, UsersModule, SessionsModule, RelayModule, LastUsedModule],
      providers,
      exports: providers.map((p) => p.provide),
    };
  }
}
