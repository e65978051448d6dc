import { ALL_SCOPES } from '@keyway/contracts';
import { startRpcService, type RpcServiceHarness } from '@keyway/testing';
import { DataSource } from 'typeorm';
import { AppModule } from '../src/app.module';
import { IdentityEnv, SERVICE, type IdentityConfig } from '../src/config';

export interface IdentityHarness extends RpcServiceHarness<IdentityConfig> {
  ds: DataSource;
}

/** The identity service in-process against real Postgres and a private nats-server. */
export async function startIdentity(label: string, env: Record<string, string> = {}): Promise<IdentityHarness> {
  const h = await startRpcService(label, {
    name: SERVICE,
    env: IdentityEnv,
    module: (config) => AppModule.forRoot(config),
    overrides: { RELAY_POLL_MS: '50', ...env },
  });
  const ctx = h.ctx;
  return { ...h, ds: h.app.get(DataSource), ctx: (tenantId) => ({ ...ctx(tenantId), scopes: [...ALL_SCOPES] }) };
}
