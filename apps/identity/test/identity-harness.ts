import { ALL_SCOPES, type RequestContext } from '@keyway/contracts';
import { loadConfig, startService } from '@keyway/runtime';
import { startInfra, type TestInfra } from '@keyway/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DataSource } from 'typeorm';
import { AppModule } from '../src/app.module';
import { IdentityEnv, SERVICE, type IdentityConfig } from '../src/config';

export interface IdentityHarness {
  infra: TestInfra;
  app: NestFastifyApplication;
  nc: NatsConnection;
  ds: DataSource;
  config: IdentityConfig;
  call<T = unknown>(subject: string, data: unknown): Promise<{ response?: T; err?: { code: string; error: string } }>;
  ctx(tenantId: string): RequestContext;
  close(): Promise<void>;
}

let seq = 0;

/** The identity service in-process against real Postgres and a private nats-server. */
export async function startIdentity(label: string, env: Record<string, string> = {}): Promise<IdentityHarness> {
  const infra = await startInfra(label);
  const config = loadConfig(IdentityEnv, { ...infra.env, RELAY_POLL_MS: '50', ...env });
  const app = await startService({ name: SERVICE, module: AppModule.forRoot(config), config });
  const nc = await connect({ servers: infra.natsUrl });
  return {
    infra,
    app,
    nc,
    ds: app.get(DataSource),
    config,
    async call(subject, data) {
      const m = await nc.request(subject, JSON.stringify({ pattern: subject, data, id: String(++seq) }), { timeout: 10_000 });
      return m.json();
    },
    ctx: (tenantId) => ({ tenant_id: tenantId, actor: { type: 'key', id: 'key_test' }, request_id: `req_${++seq}`, scopes: [...ALL_SCOPES] }),
    async close() {
      await nc.close();
      await app.close();
      await infra.stop();
    },
  };
}
