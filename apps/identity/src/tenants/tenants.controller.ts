import { ALL_SCOPES, CreateTenantBody, Rpc, newId, type CreatedTenant } from '@keyway/contracts';
import { parseRpc } from '@keyway/runtime';
import { Controller, Injectable } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { DataSource } from 'typeorm';
import { KeysHandler } from '../keys/keys.handler';

@Injectable()
export class TenantsHandler {
  constructor(
    private readonly ds: DataSource,
    private readonly keys: KeysHandler,
  ) {}

  /** The tenant and its root key (every scope) commit together or not at all. */
  async create(name: string, actorId: string): Promise<CreatedTenant> {
    return this.ds.transaction(async (tx) => {
      const tenant = { id: newId('tenant'), name };
      await tx.query(`INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, now())`, [tenant.id, tenant.name]);
      const root = await this.keys.create(
        { tenant_id: tenant.id, actor: { type: 'operator', id: actorId } },
        { name: 'Root key', scopes: [...ALL_SCOPES], environment: 'live' },
        tx,
      );
      return { tenant, root_key: { id: root.id, prefix: root.prefix, key: root.key, scopes: root.scopes } };
    });
  }
}

@Controller()
export class TenantsController {
  constructor(private readonly tenants: TenantsHandler) {}

  @MessagePattern(Rpc.tenantsCreate)
  create(@Payload() raw: unknown) {
    const r = parseRpc(raw, { body: CreateTenantBody });
    return this.tenants.create(r.body.name, r.ctx.actor.id);
  }
}
