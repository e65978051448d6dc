import 'reflect-metadata';
import { loadConfigOrExit, startService } from '@keyway/runtime';
import { AppModule } from './app.module';
import { JourneysEnv, SERVICE } from './config';

async function main(): Promise<void> {
  const config = loadConfigOrExit(SERVICE, JourneysEnv);
  await startService({ name: SERVICE, module: AppModule.forRoot(config), config });
}

void main();
