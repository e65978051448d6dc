import { serviceDatabaseUrl, serviceModules } from '@keyway/database';
import { Module, type DynamicModule } from '@nestjs/common';
import { IDENTITY_CONFIG, IDENTITY_DATABASE_URL, SERVICE, type IdentityConfig } from './config';
import { ExpirySweeper } from './keys/expiry.sweeper';
import { GatewayInvalidation } from './keys/gateway-invalidation';
import { KeysController } from './keys/keys.controller';
import { KeysHandler } from './keys/keys.handler';
import { KeysQueries } from './keys/keys.queries';
import { LastUsedConsumer } from './keys/last-used.consumer';
import { migrations } from './migrations';
import { RelayService } from './relay/relay.service';
import { TenantsController } from './tenants/tenants.controller';
import { TenantsHandler } from './tenants/tenants.handler';
import { UsersController } from './users/users.controller';
import { UsersService } from './users/users.service';

@Module({})
export class AppModule {
  static forRoot(config: IdentityConfig): DynamicModule {
    const url = serviceDatabaseUrl(config.DATABASE_URL, SERVICE);
    return {
      module: AppModule,
      imports: serviceModules({ service: SERVICE, config, entities: [], migrations }),
      controllers: [KeysController, TenantsController, UsersController],
      providers: [
        { provide: IDENTITY_CONFIG, useValue: config },
        { provide: IDENTITY_DATABASE_URL, useValue: url },
        KeysQueries,
        KeysHandler,
        GatewayInvalidation,
        ExpirySweeper,
        LastUsedConsumer,
        RelayService,
        TenantsHandler,
        UsersService,
      ],
    };
  }
}
