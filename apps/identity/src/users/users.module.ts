import { Module } from '@nestjs/common';
import { GatewaysModule } from '../gateways/gateways.module';
import { UsersController } from './users.controller';
import { UsersService } from './users.service';

/** Tenant members (`/v1/users`): roles, the grants they are, the tenant's last admin. */
@Module({ imports: [GatewaysModule], controllers: [UsersController], providers: [UsersService], exports: [UsersService] })
export class UsersModule {}
