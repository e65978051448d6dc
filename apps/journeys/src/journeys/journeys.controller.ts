import { ConversionBody, CreateJourneyBody, IdParams, JourneyListQuery, paged, Paging, Rpc, TouchpointBody, UpdateJourneyBody } from '@keyway/contracts';
import { parseRpc } from '@keyway/runtime';
import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { callerOf } from '../caller';
import { JourneyError } from './journeys.errors';
import { JourneysService } from './journeys.service';

/** The list's filters with the page rules (`page × pageSize` bound, `after` or `page`). */
const ListQuery = paged(JourneyListQuery);

@Controller()
export class JourneysController {
  constructor(private readonly journeys: JourneysService) {}

  @MessagePattern(Rpc.journeysList)
  list(@Payload() raw: unknown) {
    const r = parseRpc(raw, { query: ListQuery });
    return this.journeys.list(callerOf(r.ctx), r.query);
  }

  @MessagePattern(Rpc.journeysGet)
  get(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams });
    return this.journeys.get(callerOf(r.ctx), r.params.id);
  }

  @MessagePattern(Rpc.journeysCreate)
  create(@Payload() raw: unknown) {
    const r = parseRpc(raw, { body: CreateJourneyBody });
    return this.journeys.create(callerOf(r.ctx), r.body);
  }

  @MessagePattern(Rpc.journeysUpdate)
  update(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams, body: UpdateJourneyBody });
    return this.journeys.update(callerOf(r.ctx), r.params.id, r.body);
  }

  @MessagePattern(Rpc.journeysDelete)
  async remove(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams });
    await this.journeys.remove(callerOf(r.ctx), r.params.id);
    return null;
  }

  @MessagePattern(Rpc.journeysAddTouchpoint)
  addTouchpoint(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams, body: TouchpointBody });
    return this.journeys.addTouchpoint(callerOf(r.ctx), r.params.id, r.body);
  }

  @MessagePattern(Rpc.journeysListTouchpoints)
  listTouchpoints(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams, query: Paging });
    return this.journeys.listTouchpoints(callerOf(r.ctx), r.params.id, r.query);
  }

  @MessagePattern(Rpc.journeysAddConversion)
  addConversion(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams, body: ConversionBody });
    return this.journeys.addConversion(callerOf(r.ctx), r.params.id, r.body);
  }

  /**
   * `DELETE /v1/test-data`. The gateway admits only test keys and test-mode sessions; a caller of
   * another mode reaching here is refused all the same (it could only ever delete test data).
   */
  @MessagePattern(Rpc.journeysPurgeTestData)
  async purgeTestData(@Payload() raw: unknown) {
    const r = parseRpc(raw, {});
    if (r.ctx.environment !== 'test') throw JourneyError.testModeOnly();
    await this.journeys.purgeTestData(r.ctx.tenant_id);
    return null;
  }
}
