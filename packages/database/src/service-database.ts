import { Client } from 'pg';
import { DataSource, type DataSourceOptions, type MixedList } from 'typeorm';
import { pgErrorCode } from './pg-errors';

/**
 * Each service owns one database, named after the configured one: `keyway` → `keyway_identity`.
 * Tests point DATABASE_URL at `keyway_t<run>` so every run gets its own set.
 */
export function serviceDatabaseUrl(baseUrl: string, service: string): string {
  const url = new URL(baseUrl);
  const base = decodeURIComponent(url.pathname.replace(/^\//, '')) || 'keyway';
  url.pathname = `/${base}_${service.replace(/[^a-z0-9]/gi, '_')}`;
  return url.toString();
}

function databaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
}

function maintenanceUrl(url: string): string {
  const u = new URL(url);
  u.pathname = '/postgres';
  return u.toString();
}

/** Creates the database if it is missing; safe when several replicas start at once. */
export async function ensureDatabase(url: string): Promise<void> {
  const name = databaseName(url);
  const client = new Client({ connectionString: maintenanceUrl(url) });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) {
      try {
        await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
      } catch (err) {
        // Another replica won the race: the database exists (42P04, or 23505 when both inserted
        // into pg_database at once), which is all we wanted.
        const code = pgErrorCode(err);
        if (code !== '42P04' && code !== '23505') throw err;
      }
    }
  } finally {
    await client.end();
  }
}

export async function dropDatabases(adminUrl: string, namePrefix: string): Promise<string[]> {
  const client = new Client({ connectionString: maintenanceUrl(adminUrl) });
  await client.connect();
  try {
    const rows = await client.query<{ datname: string }>(
      // Not LIKE: `_` in a prefix would match any character.
      'SELECT datname FROM pg_database WHERE left(datname, length($1)) = $1',
      [namePrefix],
    );
    for (const { datname } of rows.rows) {
      await client.query(`DROP DATABASE IF EXISTS "${datname.replace(/"/g, '""')}" WITH (FORCE)`);
    }
    return rows.rows.map((r) => r.datname);
  } finally {
    await client.end();
  }
}

export interface ServiceDataSourceOptions {
  url: string;
  entities: MixedList<Function | string>;
  migrations: MixedList<Function | string>;
  poolSize?: number;
}

export function serviceDataSourceOptions(opts: ServiceDataSourceOptions): DataSourceOptions {
  return {
    type: 'postgres',
    url: opts.url,
    entities: opts.entities,
    migrations: opts.migrations,
    migrationsTableName: 'migrations',
    synchronize: false,
    migrationsRun: false,
    logging: false,
    extra: { max: opts.poolSize ?? 10 },
  };
}

/** The advisory lock the migration run holds (advisory locks are per database: one per service). */
const MIGRATION_LOCK = 'keyway-migrations';

/**
 * Applies every pending migration in one transaction, one replica at a time: the run holds a
 * session advisory lock on a connection of its own (not one of the pool, which may hold a single
 * connection), so a replica that starts while another migrates waits for it and then finds nothing
 * pending. Without it both would create the migrations table or apply the same migration, and one
 * would fail to boot. Needs a session-mode connection (not a transaction-mode pooler).
 */
export async function runMigrationsLocked(ds: DataSource, url: string): Promise<void> {
  const lock = new Client({ connectionString: url });
  await lock.connect();
  try {
    await lock.query('SELECT pg_advisory_lock(hashtext($1))', [MIGRATION_LOCK]);
    await ds.runMigrations({ transaction: 'all' });
  } finally {
    // Ending the session releases the lock, whatever happened.
    await lock.end().catch(() => undefined);
  }
}

/** Creates the database if missing, connects, and applies every pending migration (runMigrationsLocked). */
export async function openServiceDatabase(opts: ServiceDataSourceOptions): Promise<DataSource> {
  await ensureDatabase(opts.url);
  const ds = new DataSource(serviceDataSourceOptions(opts));
  await ds.initialize();
  try {
    await runMigrationsLocked(ds, opts.url);
  } catch (err) {
    await ds.destroy().catch(() => undefined);
    throw err;
  }
  return ds;
}
