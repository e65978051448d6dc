import { serviceModules } from '@keyway/service';
import { Module, type DynamicModule } from '@nestjs/common';
import { AuditEventEntity } from './audit/audit-event.entity';
import { AuditIngestService } from './audit/audit-ingest.service';
import { AuditModule } from './audit/audit.module';
import { SERVICE, type AuditLogConfig } from './config';
import { migrations } from './migrations';
import { UsageModule } from './usage/usage.module';

@Module({})
export class AppModule {
  static forRoot(config: AuditLogConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ...serviceModules({
          service: SERVICE,
          config,
          entities: [AuditEventEntity],
          migrations,
          // Room for every writer plus the log queries next to them.
          poolSize: config.AUDIT_WRITERS + 8,
          checks: {
            inject: [AuditIngestService],
            useFactory: (ingest: AuditIngestService) => ({ consumer: async () => ingest.assertConsuming() }),
          },
        }),
        AuditModule.forRoot(config),
        UsageModule.forRoot(config),
      ],
    };
  }
}
