import { PageQuery, Rpc } from '@keyway/contracts';
import { parseRpc } from '@keyway/runtime';
import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { z } from 'zod';
import { KeyLogsHandler } from './key-logs.handler';

const KeyParams = z.object({ id: z.string().min(1).max(100) });

@Controller()
export class AuditController {
  constructor(private readonly keyLogs: KeyLogsHandler) {}

  @MessagePattern(Rpc.auditKeyLogs)
  logs(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: KeyParams, query: PageQuery });
    return this.keyLogs.execute({ tenantId: r.ctx.tenant_id, keyId: r.params.id, page: r.query });
  }
}
