import { CreateTenantBody, IdParams, IssueRootKeyBody, Paging, Rpc, UpdateTenantBody } from '@keyway/contracts';
import { parseRpc } from '@keyway/runtime';
import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { TenantsHandler } from './tenants.handler';

/**
 * The operator's tenant routes; the gateway lets only the operator token reach them, so whoever
 * the context names, these act as the operator.
 */
const operator = (id: string) => ({ type: 'operator' as const, id });

@Controller()
export class TenantsController {
  constructor(private readonly tenants: TenantsHandler) {}

  @MessagePattern(Rpc.tenantsCreate)
  create(@Payload() raw: unknown) {
    const r = parseRpc(raw, { body: CreateTenantBody });
    return this.tenants.create(r.body, operator(r.ctx.actor.id), r.ctx.idempotency);
  }

  @MessagePattern(Rpc.tenantsList)
  list(@Payload() raw: unknown) {
    return this.tenants.list(parseRpc(raw, { query: Paging }).query);
  }

  @MessagePattern(Rpc.tenantsUpdate)
  update(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams, body: UpdateTenantBody });
    return this.tenants.update(r.params.id, r.body);
  }

  @MessagePattern(Rpc.tenantsRootKey)
  rootKey(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams, body: IssueRootKeyBody });
    return this.tenants.issueRootKey(r.params.id, r.body.environment ?? 'live', operator(r.ctx.actor.id));
  }
}
