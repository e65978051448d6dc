import { Module } from '@nestjs/common';
import { GatewaysModule } from '../gateways/gateways.module';
import { KeysModule } from '../keys/keys.module';
import { UsersModule } from '../users/users.module';
import { TenantsController } from './tenants.controller';
import { TenantsHandler } from './tenants.handler';

/** Tenants, their ceilings and root keys: the operator's routes. */
@Module({ imports: [KeysModule, GatewaysModule, UsersModule], controllers: [TenantsController], providers: [TenantsHandler] })
export class TenantsModule {}
