import { Module } from '@nestjs/common';
import { RelayService } from './relay.service';

/** The outbox relay: committed key events to JetStream (the `KEYWAY` stream's owner). */
@Module({ providers: [RelayService] })
export class RelayModule {}
