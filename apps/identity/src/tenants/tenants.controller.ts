import { AdminRevokeKeyBody, CreateTenantBody, FindKeyQuery, IdParams, IssueRootKeyBody, Paging, Rpc, UpdateTenantBody } from '@keyway/contracts';
import { parseRpc } from '@keyway/runtime';
import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { z } from 'zod';
import { OperatorKeys } from './operator-keys';
import { RelayStatusReader } from './relay-status';
import { TenantsHandler } from './tenants.handler';

/**
 * The operator's routes (`/admin/v1`); the gateway lets only the operator token reach them, so
 * whoever the context names, these act as the operator (the context's id is the operator's
 * stable id, never the token).
 */
const operator = (id: string) => ({ type: 'operator' as const, id });

@Controller()
export class TenantsController {
  constructor(
    private readonly tenants: TenantsHandler,
    private readonly keys: OperatorKeys,
    private readonly relay: RelayStatusReader,
  ) {}

  @MessagePattern(Rpc.tenantsCreate)
  create(@Payload() raw: unknown) {
    const r = parseRpc(raw, { body: CreateTenantBody });
    return this.tenants.create(r.body, operator(r.ctx.actor.id), r.ctx.idempotency);
  }

  @MessagePattern(Rpc.tenantsList)
  list(@Payload() raw: unknown) {
    return this.tenants.list(parseRpc(raw, { query: Paging }).query);
  }

  @MessagePattern(Rpc.tenantsGet)
  get(@Payload() raw: unknown) {
    return this.tenants.get(parseRpc(raw, { params: IdParams }).params.id);
  }

  @MessagePattern(Rpc.tenantsUpdate)
  update(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams, body: UpdateTenantBody });
    return this.tenants.update(r.params.id, r.body, operator(r.ctx.actor.id));
  }

  @MessagePattern(Rpc.tenantsRootKey)
  rootKey(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams, body: IssueRootKeyBody });
    return this.tenants.issueRootKey(r.params.id, r.body.environment ?? 'live', operator(r.ctx.actor.id));
  }

  @MessagePattern(Rpc.adminKeysFind)
  findKey(@Payload() raw: unknown) {
    return this.keys.find(parseRpc(raw, { query: FindKeyQuery }).query.prefix);
  }

  @MessagePattern(Rpc.adminKeysRevoke)
  revokeKey(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams, body: AdminRevokeKeyBody });
    return this.keys.revoke(r.params.id, r.body.reason, operator(r.ctx.actor.id), r.ctx.idempotency);
  }

  @MessagePattern(Rpc.adminRelayStatus)
  relayStatus(@Payload() raw: unknown) {
    parseRpc(raw, { query: z.strictObject({}) });
    return this.relay.status();
  }
}
