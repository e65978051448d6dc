import { IdParams, Rpc, ScopeReportQuery, UsageQuery } from '@keyway/contracts';
import { parseRpc } from '@keyway/runtime';
import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { UsageReportHandler } from './usage-report.handler';

@Controller()
export class UsageController {
  constructor(private readonly reports: UsageReportHandler) {}

  @MessagePattern(Rpc.keysUsage)
  usage(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams, query: UsageQuery });
    return this.reports.usageOf({ ctx: r.ctx, keyId: r.params.id, from: r.query.from, to: r.query.to, interval: r.query.interval });
  }

  @MessagePattern(Rpc.keysScopeReport)
  scopeReport(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams, query: ScopeReportQuery });
    return this.reports.scopeReport({ ctx: r.ctx, keyId: r.params.id, days: r.query.days });
  }
}
