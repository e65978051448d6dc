import { Module, type DynamicModule } from '@nestjs/common';
import type { AuditLogConfig } from '../config';
import { USAGE_CONFIG, UsageIngestService } from './usage-ingest.service';
import { UsageReportHandler } from './usage-report.handler';
import { UsageController } from './usage.controller';
import { UsageRepository } from './usage.repository';

/** Key usage: the durable per-minute record of `used` events, and its routes. */
@Module({})
export class UsageModule {
  static forRoot(config: AuditLogConfig): DynamicModule {
    return {
      module: UsageModule,
      // Global only so the app's HealthModule can ask whether the consumers are running.
      global: true,
      controllers: [UsageController],
      providers: [{ provide: USAGE_CONFIG, useValue: config }, UsageRepository, UsageIngestService, UsageReportHandler],
      exports: [UsageIngestService],
    };
  }
}
