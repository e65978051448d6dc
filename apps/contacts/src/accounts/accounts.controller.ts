import { CreateAccountBody, PageQuery, Rpc, UpdateAccountBody, IdParams } from '@keyway/contracts';
import { parseRpc } from '@keyway/runtime';
import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { AccountsService } from './accounts.service';


@Controller()
export class AccountsController {
  constructor(private readonly accounts: AccountsService) {}

  @MessagePattern(Rpc.accountsList)
  list(@Payload() raw: unknown) {
    const r = parseRpc(raw, { query: PageQuery });
    return this.accounts.list(r.ctx.tenant_id, r.query);
  }

  @MessagePattern(Rpc.accountsGet)
  get(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams });
    return this.accounts.get(r.ctx.tenant_id, r.params.id);
  }

  @MessagePattern(Rpc.accountsCreate)
  create(@Payload() raw: unknown) {
    const r = parseRpc(raw, { body: CreateAccountBody });
    return this.accounts.create(r.ctx.tenant_id, r.body);
  }

  @MessagePattern(Rpc.accountsUpdate)
  update(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams, body: UpdateAccountBody });
    return this.accounts.update(r.ctx.tenant_id, r.params.id, r.body);
  }

  @MessagePattern(Rpc.accountsDelete)
  async remove(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams });
    await this.accounts.remove(r.ctx.tenant_id, r.params.id);
    return null;
  }
}
