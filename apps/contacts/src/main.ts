import 'reflect-metadata';
import { loadConfigOrExit, startService } from '@keyway/runtime';
import { AppModule } from './app.module';
import { ContactsEnv, SERVICE } from './config';

async function main(): Promise<void> {
  const config = loadConfigOrExit(SERVICE, ContactsEnv);
  await startService({ name: SERVICE, module: AppModule.forRoot(config), config });
}

void main();
