import { dropDatabases, dropRoles } from '@keyway/database';
import { pgAdminUrl, runId } from './infra';
import { portAnswers } from './ports';

/** Whatever a crashed test file left behind: every database of this run goes, then its roles. */
export default async function globalTeardown(): Promise<void> {
  const pg = new URL(pgAdminUrl());
  if (!(await portAnswers(pg.hostname, Number(pg.port || 5432)))) return;
  await dropDatabases(pgAdminUrl(), `keyway_t${runId()}_`);
  await dropRoles(pgAdminUrl(), `keyway_t${runId()}_`);
}
