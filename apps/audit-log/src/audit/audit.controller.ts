import { IdParams, PageQuery, Rpc } from '@keyway/contracts';
import { parseRpc } from '@keyway/runtime';
import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { KeyLogsHandler } from './key-logs.handler';

@Controller()
export class AuditController {
  constructor(private readonly keyLogs: KeyLogsHandler) {}

  @MessagePattern(Rpc.auditKeyLogs)
  logs(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams, query: PageQuery });
    return this.keyLogs.execute({ tenantId: r.ctx.tenant_id, keyId: r.params.id, page: r.query });
  }
}
