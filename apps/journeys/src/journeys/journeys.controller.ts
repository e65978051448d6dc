import { ConversionBody, CreateJourneyBody, IdParams, JourneyListQuery, PageQuery, Rpc, TouchpointBody, UpdateJourneyBody } from '@keyway/contracts';
import { parseRpc } from '@keyway/runtime';
import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { JourneysService } from './journeys.service';

@Controller()
export class JourneysController {
  constructor(private readonly journeys: JourneysService) {}

  @MessagePattern(Rpc.journeysList)
  list(@Payload() raw: unknown) {
    const r = parseRpc(raw, { query: JourneyListQuery });
    return this.journeys.list(r.ctx.tenant_id, r.query);
  }

  @MessagePattern(Rpc.journeysGet)
  get(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams });
    return this.journeys.get(r.ctx.tenant_id, r.params.id);
  }

  @MessagePattern(Rpc.journeysCreate)
  create(@Payload() raw: unknown) {
    const r = parseRpc(raw, { body: CreateJourneyBody });
    return this.journeys.create(r.ctx.tenant_id, r.body);
  }

  @MessagePattern(Rpc.journeysUpdate)
  update(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams, body: UpdateJourneyBody });
    return this.journeys.update(r.ctx.tenant_id, r.params.id, r.body);
  }

  @MessagePattern(Rpc.journeysDelete)
  async remove(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams });
    await this.journeys.remove(r.ctx.tenant_id, r.params.id);
    return null;
  }

  @MessagePattern(Rpc.journeysAddTouchpoint)
  addTouchpoint(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams, body: TouchpointBody });
    return this.journeys.addTouchpoint(r.ctx.tenant_id, r.params.id, r.body);
  }

  @MessagePattern(Rpc.journeysListTouchpoints)
  listTouchpoints(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams, query: PageQuery });
    return this.journeys.listTouchpoints(r.ctx.tenant_id, r.params.id, r.query);
  }

  @MessagePattern(Rpc.journeysAddConversion)
  addConversion(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams, body: ConversionBody });
    return this.journeys.addConversion(r.ctx.tenant_id, r.params.id, r.body);
  }
}
