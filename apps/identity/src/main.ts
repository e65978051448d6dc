import 'reflect-metadata';
import { loadConfigOrExit, startService } from '@keyway/runtime';
import { AppModule } from './app.module';
import { IdentityEnv, SERVICE } from './config';
import { REPLICA_NAME } from './tenants/relay-status';

async function main(): Promise<void> {
  // Each Postgres session names this replica, so `GET /admin/v1/relay` can say which one leads.
  process.env.PGAPPNAME ??= REPLICA_NAME;
  const config = loadConfigOrExit(SERVICE, IdentityEnv);
  await startService({ name: SERVICE, module: AppModule.forRoot(config), config });
}

void main();
