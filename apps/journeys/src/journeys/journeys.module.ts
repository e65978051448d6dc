import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { ConversionEntity, JourneyEntity, TouchpointEntity } from './journey.entity';
import { JourneysController } from './journeys.controller';
import { JourneysService } from './journeys.service';

@Module({
  imports: [TypeOrmModule.forFeature([JourneyEntity, TouchpointEntity, ConversionEntity])],
  controllers: [JourneysController],
  providers: [JourneysService],
})
export class JourneysModule {}
