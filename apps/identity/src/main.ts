import 'reflect-metadata';
import { loadConfigOrExit, startService } from '@keyway/runtime';
import { AppModule } from './app.module';
import { IdentityEnv, SERVICE } from './config';

async function main(): Promise<void> {
  const config = loadConfigOrExit(SERVICE, IdentityEnv);
  await startService({ name: SERVICE, module: AppModule.forRoot(config), config });
}

void main();
