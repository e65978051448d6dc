import { Rpc } from '@keyway/contracts';
import { parseRpc } from '@keyway/runtime';
import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { callerOf } from '../shared/caller';
import { TestDataService } from './test-data.service';

@Controller()
export class TestDataController {
  constructor(private readonly testData: TestDataService) {}

  /** `DELETE /v1/test-data` (the gateway asks journeys too, and answers 204 once both have). */
  @MessagePattern(Rpc.contactsPurgeTestData)
  async purge(@Payload() raw: unknown) {
    const r = parseRpc(raw, {});
    await this.testData.purge(callerOf(r.ctx));
    return null;
  }
}
