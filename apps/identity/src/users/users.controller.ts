import { CreateUserBody, Paging, Rpc, UpdateUserBody, IdParams } from '@keyway/contracts';
import { parseRpc } from '@keyway/runtime';
import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { UsersService } from './users.service';


@Controller()
export class UsersController {
  constructor(private readonly users: UsersService) {}

  @MessagePattern(Rpc.usersList)
  list(@Payload() raw: unknown) {
    const r = parseRpc(raw, { query: Paging });
    return this.users.list(r.ctx.tenant_id, r.query);
  }

  @MessagePattern(Rpc.usersGet)
  get(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams });
    return this.users.get(r.ctx.tenant_id, r.params.id);
  }

  @MessagePattern(Rpc.usersCreate)
  create(@Payload() raw: unknown) {
    const r = parseRpc(raw, { body: CreateUserBody });
    return this.users.createOnce(r.ctx, r.body);
  }

  @MessagePattern(Rpc.usersUpdate)
  update(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams, body: UpdateUserBody });
    return this.users.update(r.ctx, r.params.id, r.body);
  }

  @MessagePattern(Rpc.usersDelete)
  async remove(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams });
    await this.users.remove(r.ctx, r.params.id);
    return null;
  }
}
