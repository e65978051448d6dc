import type { ErrorBody, RequestContext } from '@keyway/contracts';
import { loadConfig, startService, type BaseEnv } from '@keyway/runtime';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { DynamicModule } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { z } from 'zod';
import { startInfra, type TestInfra } from './infra';

interface Reply<T> {
  response?: T;
  err?: ErrorBody;
  /** The service answered a retried POST with its first answer (Idempotency-Key). */
  replayed?: true;
}

export interface RpcServiceHarness<C> {
  infra: TestInfra;
  app: NestFastifyApplication;
  nc: NatsConnection;
  config: C;
  /** One request in Nest's NATS wire format; the raw reply (`response` or `err`). */
  call<T = unknown>(subject: string, data: unknown): Promise<Reply<T>>;
  /** Like `call`, but throws on an error reply. */
  ok<T = unknown>(subject: string, data: unknown): Promise<T>;
  /** A request context for a tenant, as the gateway builds it from a verified key. */
  ctx(tenantId: string): RequestContext;
  close(): Promise<void>;
}

let seq = 0;

/**
 * A service in-process against real Postgres and its test file's own nats-server, called over
 * NATS exactly as the gateway calls it.
 */
export async function startRpcService<S extends z.ZodType<BaseEnv>>(
  label: string,
  opts: { name: string; env: S; module: (config: z.infer<S>) => DynamicModule; overrides?: Record<string, string> },
): Promise<RpcServiceHarness<z.infer<S>>> {
  const infra = await startInfra(label);
  const config = loadConfig(opts.env, { ...infra.env, ...opts.overrides });
  const app = await startService({ name: opts.name, module: opts.module(config), config });
  const nc = await connect({ servers: infra.natsUrl });
  const call = async <T>(subject: string, data: unknown): Promise<Reply<T>> => {
    const m = await nc.request(subject, JSON.stringify({ pattern: subject, data, id: String(++seq) }), { timeout: 10_000 });
    return m.json<Reply<T>>();
  };
  return {
    infra,
    app,
    nc,
    config,
    call,
    async ok<T>(subject: string, data: unknown): Promise<T> {
      const r = await call<T>(subject, data);
      if (r.err) throw new Error(`${subject}: ${JSON.stringify(r.err)}`);
      return r.response as T;
    },
    ctx: (tenantId) => ({ tenant_id: tenantId, actor: { type: 'key', id: 'key_test' }, request_id: `req_${++seq}`, scopes: [] }),
    async close() {
      await nc.close();
      await app.close();
      await infra.stop();
    },
  };
}
