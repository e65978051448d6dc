import 'reflect-metadata';
import { loadConfigOrExit } from '@keyway/runtime';
import { AuditLogEnv, SERVICE } from '../config';
import { rebuildTrail } from './rebuild';

/**
 * `npm run rebuild -w @keyway/audit-log`: rebuilds the audit trail from the KEYWAY stream into the
 * (empty) database of DATABASE_URL, with the same AUDIT_CHAIN_KEY, then checks every tenant's
 * chain against its published head. Exit 0: identical; 1: a mismatch or a failure.
 */
async function main(): Promise<void> {
  const config = loadConfigOrExit(SERVICE, AuditLogEnv);
  const started = Date.now();
  const r = await rebuildTrail(config);
  process.stdout.write(`rebuilt ${r.entries} entries of ${r.tenants} tenants in ${Date.now() - started} ms (consumer ${r.durable}, deleted)\n`);
  for (const m of r.mismatches) process.stdout.write(`  ${m.tenant_id}: ${m.reason}\n`);
  if (r.mismatches.length > 0) {
    process.stderr.write(`${r.mismatches.length} tenants do not match their published head\n`);
    process.exit(1);
  }
}

main().catch((err: Error) => {
  process.stderr.write(`rebuild failed: ${err.message}\n`);
  process.exit(1);
});
