import { Module } from '@nestjs/common';
import { DomainRelayService } from './domain-relay.service';

/** Domain events: the outbox relay to `KEYWAY_DOMAIN` (written by the features through recordChanges). */
@Module({ providers: [DomainRelayService] })
export class EventsModule {}
