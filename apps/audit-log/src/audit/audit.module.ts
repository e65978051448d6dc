import { Module, type DynamicModule } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { AuditLogConfig } from '../config';
import { AuditEventEntity } from './audit-event.entity';
import { AuditEventsRepository } from './audit-events.repository';
import { AUDIT_CONFIG, AuditIngestService } from './audit-ingest.service';
import { AuditController } from './audit.controller';
import { KeyLogsHandler } from './key-logs.handler';

@Module({})
export class AuditModule {
  static forRoot(config: AuditLogConfig): DynamicModule {
    return {
      module: AuditModule,
      // Global only so the app's HealthModule can ask the ingest service whether it is consuming.
      global: true,
      imports: [TypeOrmModule.forFeature([AuditEventEntity])],
      controllers: [AuditController],
      providers: [{ provide: AUDIT_CONFIG, useValue: config }, AuditEventsRepository, AuditIngestService, KeyLogsHandler],
      exports: [AuditIngestService],
    };
  }
}
