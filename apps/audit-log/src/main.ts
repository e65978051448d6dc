import 'reflect-metadata';
import { loadConfigOrExit, startService } from '@keyway/runtime';
import { AppModule } from './app.module';
import { AuditLogEnv, SERVICE } from './config';

async function main(): Promise<void> {
  const config = loadConfigOrExit(SERVICE, AuditLogEnv);
  await startService({ name: SERVICE, module: AppModule.forRoot(config), config });
}

void main();
