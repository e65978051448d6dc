import { Module, type DynamicModule } from '@nestjs/common';
import { ChainService } from '../chain/chain.service';
import type { AuditLogConfig } from '../config';
import { AUDIT_CONFIG, AuditEventsRepository } from './audit-events.repository';
import { AuditEventsHandler } from './audit-events.handler';
import { AuditIngestService } from './audit-ingest.service';
import { AuditController } from './audit.controller';
import { KeyLogsHandler } from './key-logs.handler';

@Module({})
export class AuditModule {
  static forRoot(config: AuditLogConfig): DynamicModule {
    return {
      module: AuditModule,
      // Global only so the app's HealthModule can ask the ingest service whether it is consuming.
      global: true,
      controllers: [AuditController],
      providers: [{ provide: AUDIT_CONFIG, useValue: config }, AuditEventsRepository, ChainService, AuditIngestService, KeyLogsHandler, AuditEventsHandler],
      exports: [AuditIngestService],
    };
  }
}
