import { serviceDatabaseUrl } from '@keyway/database';
import { Module, type DynamicModule } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { JOURNEYS_CONFIG, JOURNEYS_DATABASE_URL, SERVICE, type JourneysConfig } from '../config';
import { ContactDeletionsConsumer } from '../contacts/contact-deletions.consumer';
import { ContactsClient } from '../contacts/contacts.client';
import { DomainStream } from '../events/domain-stream';
import { JourneyEventsRelay } from '../events/journey-events.relay';
import { ConversionEntity, JourneyEntity, TouchpointEntity } from './journey.entity';
import { JourneysController } from './journeys.controller';
import { JourneysService } from './journeys.service';

@Module({})
export class JourneysModule {
  static forRoot(config: JourneysConfig): DynamicModule {
    return {
      module: JourneysModule,
      imports: [TypeOrmModule.forFeature([JourneyEntity, TouchpointEntity, ConversionEntity])],
      controllers: [JourneysController],
      providers: [
        { provide: JOURNEYS_CONFIG, useValue: config },
        { provide: JOURNEYS_DATABASE_URL, useValue: serviceDatabaseUrl(config.DATABASE_URL, SERVICE) },
        ContactsClient,
        JourneysService,
        DomainStream,
        JourneyEventsRelay,
        ContactDeletionsConsumer,
      ],
    };
  }
}
