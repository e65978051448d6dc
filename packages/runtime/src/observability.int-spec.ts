import { startRpcService, type RpcServiceHarness } from '@keyway/testing';
import { Controller, Module, type DynamicModule } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { headers } from '@nats-io/transport-node';
import { LoggerModule } from 'nestjs-pino';
import { Writable } from 'node:stream';
import { BaseEnv } from './config';
import { HealthModule } from './health';
import { parseRpc } from './rpc';
import { httpAddress } from './service';
import { requestLogFields } from './tracing-rpc';

const ECHO = 'keyway.test.obs.echo';
const BOOM = 'keyway.test.obs.boom';

/** Every line the service's pino writes, parsed. */
const lines: Array<Record<string, unknown>> = [];
const capture = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const l of chunk.toString().split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
    done();
  },
});

@Controller()
class ObsController {
  /** A test hook: what the handler knows of its request, as its log lines would carry it. */
  @MessagePattern(ECHO)
  echo(@Payload() raw: unknown): unknown {
    const r = parseRpc(raw, {});
    return { fields: requestLogFields(r.ctx), trace: r.trace };
  }

  /** A bug: an error that is not a KeywayError, answered `internal` and logged. */
  @MessagePattern(BOOM)
  boom(@Payload() raw: unknown): unknown {
    parseRpc(raw, {});
    throw new Error('the handler broke');
  }
}

@Module({
  imports: [
    LoggerModule.forRoot({ forRoutes: [], pinoHttp: [{ level: 'info' }, capture] }),
    HealthModule.forChecks({ useFactory: () => ({ nats: () => Promise.resolve() }) }),
  ],
  controllers: [ObsController],
})
class ObsModule {}

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

describe('a request on the bus: trace, log fields and metrics (OTel off)', () => {
  let h: RpcServiceHarness<BaseEnv>;
  let seq = 0;

  beforeAll(async () => {
    h = await startRpcService('runtime_obs', { name: 'obs-test', env: BaseEnv, module: (): DynamicModule => ({ module: ObsModule }) });
  });
  afterAll(async () => {
    await h?.close();
  });

  async function call(subject: string, data: unknown, traceparent?: string): Promise<{ response?: unknown; err?: { code: string } }> {
    const hdrs = headers();
    if (traceparent !== undefined) hdrs.set('traceparent', traceparent);
    const m = await h.nc.request(subject, JSON.stringify({ pattern: subject, data, id: String(++seq) }), { timeout: 10_000, headers: hdrs });
    return m.json();
  }

  it('the traceparent of the NATS headers reaches the handler: same trace, a new span of its own', async () => {
    const ctx = h.ctx('ten_obs1');
    const r = (await call(ECHO, { ctx }, TRACEPARENT)).response as { fields: Record<string, string>; trace: { traceId: string; spanId: string; sampled: boolean } };
    expect(r.fields).toEqual({ request_id: ctx.request_id, trace_id: TRACE_ID });
    expect(r.trace.traceId).toBe(TRACE_ID);
    expect(r.trace.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(r.trace.spanId).not.toBe('00f067aa0ba902b7');
  });

  it('no traceparent, or a forged one, starts a trace of its own', async () => {
    for (const bad of [undefined, 'garbage', `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`, `00-${TRACE_ID.toUpperCase()}-00f067aa0ba902b7-01`, `ff-${TRACE_ID}-00f067aa0ba902b7-01`]) {
      const r = (await call(ECHO, { ctx: h.ctx('ten_obs1') }, bad)).response as { fields: Record<string, string> };
      expect(r.fields.trace_id).toMatch(/^[0-9a-f]{32}$/);
      expect(r.fields.trace_id).not.toBe(TRACE_ID);
      expect(r.fields.trace_id).not.toBe('0'.repeat(32));
    }
  });

  it("an internal error's log line carries the customer's request id and the trace id", async () => {
    const ctx = h.ctx('ten_obs1');
    const r = await call(BOOM, { ctx }, TRACEPARENT);
    expect(r.err?.code).toBe('internal');
    await new Promise((res) => setTimeout(res, 50));
    const line = lines.find((l) => typeof l.err === 'string' && l.err.includes('the handler broke'));
    expect(line).toMatchObject({ request_id: ctx.request_id, trace_id: TRACE_ID, level: 50 });
  });

  it('GET /metrics on the health port: the process defaults labelled with the service, no tenant id', async () => {
    const res = await fetch(`${httpAddress(h.app)}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds\{service="obs-test"\} /m);
    expect(text).toMatch(/^process_cpu_user_seconds_total\{service="obs-test"\} /m);
    expect(text).toMatch(/^keyway_dependency_up\{dependency="nats",service="obs-test"\} 1$/m);
    expect(text).not.toContain('ten_obs1');
  });
});
