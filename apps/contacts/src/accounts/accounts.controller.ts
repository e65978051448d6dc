import { CreateAccountBody, ExternalIdParams, IdParams, Paging, Rpc, UpdateAccountBody, UpsertAccountBody, type AccountUpsertReply } from '@keyway/contracts';
import { parseRpc } from '@keyway/runtime';
import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { callerOf } from '../shared/caller';
import { AccountsService } from './accounts.service';

@Controller()
export class AccountsController {
  constructor(private readonly accounts: AccountsService) {}

  @MessagePattern(Rpc.accountsList)
  list(@Payload() raw: unknown) {
    const r = parseRpc(raw, { query: Paging });
    return this.accounts.list(callerOf(r.ctx), r.query);
  }

  @MessagePattern(Rpc.accountsGet)
  get(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams });
    return this.accounts.get(callerOf(r.ctx), r.params.id);
  }

  @MessagePattern(Rpc.accountsCreate)
  create(@Payload() raw: unknown) {
    const r = parseRpc(raw, { body: CreateAccountBody });
    return this.accounts.create(callerOf(r.ctx), r.body);
  }

  @MessagePattern(Rpc.accountsUpdate)
  update(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams, body: UpdateAccountBody });
    return this.accounts.update(callerOf(r.ctx), r.params.id, r.body);
  }

  /** `{status: 201|200, body}`: the gateway answers `body` with that status (AccountUpsertReply). */
  @MessagePattern(Rpc.accountsUpsert)
  upsert(@Payload() raw: unknown): Promise<AccountUpsertReply> {
    const r = parseRpc(raw, { params: ExternalIdParams, body: UpsertAccountBody });
    return this.accounts.upsert(callerOf(r.ctx), r.params.external_id, r.body);
  }

  @MessagePattern(Rpc.accountsDelete)
  async remove(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams });
    await this.accounts.remove(callerOf(r.ctx), r.params.id);
    return null;
  }
}
