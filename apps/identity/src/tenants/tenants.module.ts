import { Module } from '@nestjs/common';
import { GatewaysModule } from '../gateways/gateways.module';
import { KeysModule } from '../keys/keys.module';
import { UsersModule } from '../users/users.module';
import { TenantsController } from './tenants.controller';
import { OperatorKeys } from './operator-keys';
import { RelayStatusReader } from './relay-status';
import { TenantsHandler } from './tenants.handler';

/** Tenants, their ceilings and root keys, and the operator's incident tools (find and revoke a key, the relay's state). */
@Module({ imports: [KeysModule, GatewaysModule, UsersModule], controllers: [TenantsController], providers: [TenantsHandler, OperatorKeys, RelayStatusReader] })
export class TenantsModule {}
