import { AuditEventsQuery, IdParams, paged, Paging, Rpc, type RequestContext } from '@keyway/contracts';
import { parseRpc } from '@keyway/runtime';
import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { z } from 'zod';
import { AuditEventsHandler } from './audit-events.handler';
import type { TrailFilter } from './audit-events.repository';
import { KeyLogsHandler } from './key-logs.handler';

const TrailQuery = paged(AuditEventsQuery);

/** A key sees its own mode's entries only; the operator (no mode) sees both. */
const trailOf = (ctx: RequestContext): TrailFilter => ({ tenantId: ctx.tenant_id, environment: ctx.environment });

@Controller()
export class AuditController {
  constructor(
    private readonly keyLogs: KeyLogsHandler,
    private readonly events: AuditEventsHandler,
  ) {}

  @MessagePattern(Rpc.auditKeyLogs)
  logs(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams, query: Paging });
    return this.keyLogs.execute({ trail: trailOf(r.ctx), keyId: r.params.id, page: r.query });
  }

  @MessagePattern(Rpc.auditEventsList)
  list(@Payload() raw: unknown) {
    const r = parseRpc(raw, { query: TrailQuery });
    return this.events.list(trailOf(r.ctx), r.query);
  }

  @MessagePattern(Rpc.auditEventsVerify)
  verify(@Payload() raw: unknown) {
    const r = parseRpc(raw, { query: z.strictObject({}) });
    return this.events.verify(trailOf(r.ctx));
  }
}
