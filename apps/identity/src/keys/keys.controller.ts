import { CreateKeyBody, PageQuery, RevokeKeyBody, Rpc, RotateKeyBody, UpdateKeyBody, VerifyRequest, invalidRequest, type VerifyReply, IdParams } from '@keyway/contracts';
import { parseRpc } from '@keyway/runtime';
import { z } from 'zod';
import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { KeysHandler } from './keys.handler';
import { KeysQueries } from './keys.queries';

/** `POST /v1/keys/{id}/rotate/complete` takes an empty object, as its route row says. */
const CompleteRotationBody = z.strictObject({});

@Controller()
export class KeysController {
  constructor(
    private readonly handler: KeysHandler,
    private readonly queries: KeysQueries,
  ) {}

  @MessagePattern(Rpc.keysVerify)
  async verify(@Payload() raw: unknown): Promise<VerifyReply> {
    const r = VerifyRequest.safeParse(raw);
    if (!r.success) throw invalidRequest(r.error);
    return { record: await this.queries.verify(r.data.lookup_id) };
  }

  @MessagePattern(Rpc.keysList)
  list(@Payload() raw: unknown) {
    const r = parseRpc(raw, { query: PageQuery });
    return this.queries.list(r.ctx, r.query);
  }

  @MessagePattern(Rpc.keysGet)
  get(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams });
    return this.queries.get(r.ctx, r.params.id);
  }

  @MessagePattern(Rpc.keysCreate)
  create(@Payload() raw: unknown) {
    const r = parseRpc(raw, { body: CreateKeyBody });
    return this.handler.createOnce(r.ctx, r.body);
  }

  @MessagePattern(Rpc.keysUpdate)
  update(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams, body: UpdateKeyBody });
    return this.handler.update(r.ctx, r.params.id, r.body);
  }

  @MessagePattern(Rpc.keysRotate)
  rotate(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams, body: RotateKeyBody });
    return this.handler.rotate(r.ctx, r.params.id, r.body);
  }

  @MessagePattern(Rpc.keysRotateComplete)
  completeRotation(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams, body: CompleteRotationBody });
    return this.handler.completeRotation(r.ctx, r.params.id);
  }

  @MessagePattern(Rpc.keysRevoke)
  revoke(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams, body: RevokeKeyBody });
    return this.handler.revoke(r.ctx, r.params.id, r.body.reason ?? null);
  }
}
