import { serviceModules } from '@keyway/service';
import { Module, type DynamicModule } from '@nestjs/common';
import { SERVICE, type JourneysConfig } from './config';
import { ConversionEntity, JourneyEntity, TouchpointEntity } from './journeys/journey.entity';
import { JourneysModule } from './journeys/journeys.module';
import { migrations } from './migrations';

@Module({})
export class AppModule {
  static forRoot(config: JourneysConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ...serviceModules({ service: SERVICE, config, entities: [JourneyEntity, TouchpointEntity, ConversionEntity], migrations }),
        JourneysModule.forRoot(config),
      ],
    };
  }
}
