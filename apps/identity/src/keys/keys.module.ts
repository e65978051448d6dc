import { Module } from '@nestjs/common';
import { GatewaysModule } from '../gateways/gateways.module';
import { ExpirySweeper } from './expiry.sweeper';
import { KeysController } from './keys.controller';
import { KeysHandler } from './keys.handler';
import { KeysQueries } from './keys.queries';

/** API keys: the event-sourced aggregate, its commands and queries, and the expiry sweeper. */
@Module({
  imports: [GatewaysModule],
  controllers: [KeysController],
  providers: [KeysHandler, KeysQueries, ExpirySweeper],
  exports: [KeysHandler],
})
export class KeysModule {}
