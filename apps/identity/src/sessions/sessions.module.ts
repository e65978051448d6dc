import { Module } from '@nestjs/common';
import { UsersModule } from '../users/users.module';
import { SessionClock } from './session.clock';
import { SessionsController } from './sessions.controller';
import { SessionsService } from './sessions.service';

/** Dashboard sessions: sign-in with its back-off, look-up by hash with the sliding expiry, sign-out. */
@Module({ imports: [UsersModule], controllers: [SessionsController], providers: [SessionsService, SessionClock] })
export class SessionsModule {}
