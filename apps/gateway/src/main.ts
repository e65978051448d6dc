import 'reflect-metadata';
import { loadConfigOrExit } from '@keyway/runtime';
import { createGateway } from './app';
import { GatewayEnv, SERVICE } from './config';

async function main(): Promise<void> {
  const config = loadConfigOrExit(SERVICE, GatewayEnv);
  const { app, admin } = await createGateway(config);
  // The operator listener first: once the public port answers, both do.
  await admin.listen({ port: config.ADMIN_PORT, host: config.ADMIN_HOST ?? config.HOST });
  await app.listen({ port: config.PORT, host: config.HOST });
}

void main();
