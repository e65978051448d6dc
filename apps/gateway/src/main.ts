import 'reflect-metadata';
import { loadConfigOrExit } from '@keyway/runtime';
import { createGateway } from './app';
import { GatewayEnv, SERVICE } from './config';

async function main(): Promise<void> {
  const config = loadConfigOrExit(SERVICE, GatewayEnv);
  const app = await createGateway(config);
  await app.listen({ port: config.PORT, host: config.HOST });
}

void main();
