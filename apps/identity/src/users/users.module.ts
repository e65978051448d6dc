import { Module } from '@nestjs/common';
import { UsersController } from './users.controller';
import { UsersService } from './users.service';

/** Tenant members (`/v1/users`). */
@Module({ controllers: [UsersController], providers: [UsersService] })
export class UsersModule {}
