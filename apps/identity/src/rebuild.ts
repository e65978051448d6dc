import 'reflect-metadata';
import { openServiceDatabase, serviceDatabaseUrl } from '@keyway/database';
import { loadConfigOrExit } from '@keyway/runtime';
import { IdentityEnv, SERVICE } from './config';
import { rebuildReadModels } from './keys/rebuild-read-models';
import { migrations } from './migrations';

/** `npm run rebuild -w @keyway/identity`: rebuilds the key read models from the event store. */
async function main(): Promise<void> {
  const config = loadConfigOrExit(SERVICE, IdentityEnv);
  const ds = await openServiceDatabase({ url: serviceDatabaseUrl(config.DATABASE_URL, SERVICE), entities: [], migrations });
  try {
    const started = Date.now();
    const result = await rebuildReadModels(ds);
    process.stdout.write(`rebuilt ${result.keys} keys from ${result.events} events in ${Date.now() - started} ms\n`);
  } finally {
    await ds.destroy();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`rebuild failed: ${err.message}\n`);
  process.exit(1);
});
