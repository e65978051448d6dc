import { startRpcService, type RpcServiceHarness } from '@keyway/testing';
import { Controller, Module, type DynamicModule } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { LoggerModule } from 'nestjs-pino';
import { BaseEnv } from './config';
import { loggerParams } from './logger';
import { REPLY_TOO_LARGE } from './service';

const SUBJECT = 'keyway.test.runtime.echo';

/** Answers a string of the asked length, or a value JSON cannot write. */
@Controller()
class SizedController {
  @MessagePattern(SUBJECT)
  answer(@Payload() data: { bytes?: number; bigint?: boolean }): unknown {
    if (data.bigint) return { n: 1n };
    return { text: 'x'.repeat(data.bytes ?? 0) };
  }
}

@Module({ imports: [LoggerModule.forRoot(loggerParams('runtime-test', 'silent'))], controllers: [SizedController] })
class SizedModule {}

describe('RpcServer: every request gets an answer', () => {
  let h: RpcServiceHarness<BaseEnv>;

  beforeAll(async () => {
    // The harness's own timeout is 10 s: an answer that never comes fails the test on its code.
    h = await startRpcService('runtime_reply', { name: 'runtime-test', env: BaseEnv, module: (): DynamicModule => ({ module: SizedModule }) });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a reply over max_payload is answered with a small internal error, at once', async () => {
    const max = h.nc.info!.max_payload;
    const r = await h.call(SUBJECT, { bytes: max + 10 });
    expect(r.err).toEqual(REPLY_TOO_LARGE);
    expect(r.response).toBeUndefined();
  });

  it('a reply just under it still goes out whole, and later replies are unaffected', async () => {
    const max = h.nc.info!.max_payload;
    const fits = max - 200;
    const big = await h.call<{ text: string }>(SUBJECT, { bytes: fits });
    expect(big.response?.text.length).toBe(fits);
    const [a, b] = await Promise.all([h.call(SUBJECT, { bytes: max * 2 }), h.call<{ text: string }>(SUBJECT, { bytes: 3 })]);
    expect(a.err?.code).toBe('internal');
    expect(b.response).toEqual({ text: 'xxx' });
  });

  it('a reply that cannot be written at all is an internal error too, not silence', async () => {
    const r = await h.call(SUBJECT, { bigint: true });
    expect(r.err?.code).toBe('internal');
  });
});
