import { Module, type DynamicModule } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { JOURNEYS_CONFIG, type JourneysConfig } from '../config';
import { ContactsClient } from '../contacts/contacts.client';
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
      providers: [{ provide: JOURNEYS_CONFIG, useValue: config }, ContactsClient, JourneysService],
    };
  }
}
