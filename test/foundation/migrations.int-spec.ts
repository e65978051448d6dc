import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openServiceDatabase, serviceDatabaseUrl, type ServiceDataSourceOptions } from '@keyway/database';
import { startInfra, type TestInfra } from '@keyway/testing';
import type { DataSource } from 'typeorm';

/**
 * Every replica runs the migrations at boot, so running them against an up-to-date database must
 * change nothing: same columns, same indexes, same constraints, one bookkeeping row per migration.
 */
const ROOT = join(__dirname, '..', '..');
const SERVICES = ['identity', 'contacts', 'journeys', 'audit-log', 'gateway'].filter((svc) =>
  existsSync(join(ROOT, 'apps', svc, 'src', 'migrations', 'index.ts')),
);

async function schemaSnapshot(ds: DataSource): Promise<unknown> {
  const userSchemas = "NOT IN ('pg_catalog', 'information_schema', 'pg_toast')";
  const [columns, indexes, constraints] = await Promise.all([
    ds.query(
      `SELECT table_schema, table_name, column_name, ordinal_position, data_type, udt_name, is_nullable, column_default
         FROM information_schema.columns WHERE table_schema ${userSchemas}
        ORDER BY table_schema, table_name, ordinal_position`,
    ),
    ds.query(
      `SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname ${userSchemas} ORDER BY schemaname, tablename, indexname`,
    ),
    ds.query(
      `SELECT n.nspname AS schema, c.conrelid::regclass::text AS table_name, c.conname, pg_get_constraintdef(c.oid) AS def
         FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE n.nspname ${userSchemas} ORDER BY 1, 2, 3`,
    ),
  ]);
  return { columns, indexes, constraints };
}

describe('migrations', () => {
  let infra: TestInfra;

  beforeAll(async () => {
    infra = await startInfra('migrations');
  });
  afterAll(async () => {
    await infra?.stop();
  });

  it('exist for the contacts service at least', () => {
    expect(SERVICES).toContain('contacts');
  });

  it.each(SERVICES)('%s: applying them again changes nothing', async (svc) => {
    const mod = (await import(join(ROOT, 'apps', svc, 'src', 'migrations', 'index.ts'))) as {
      migrations: ServiceDataSourceOptions['migrations'];
    };
    const migrations = mod.migrations;
    const count = Array.isArray(migrations) ? migrations.length : Object.keys(migrations).length;
    expect(count).toBeGreaterThan(0);
    const opts = { url: serviceDatabaseUrl(infra.databaseUrl, svc), entities: [], migrations, poolSize: 2 };

    const first = await openServiceDatabase(opts);
    let second: DataSource | undefined;
    try {
      const before = await schemaSnapshot(first);
      expect(await first.runMigrations({ transaction: 'all' })).toEqual([]);
      expect(await schemaSnapshot(first)).toEqual(before);

      // A second replica booting against the same database: nothing to do either.
      second = await openServiceDatabase(opts);
      expect(await schemaSnapshot(second)).toEqual(before);

      const rows: Array<{ name: string }> = await second.query('SELECT name FROM migrations ORDER BY id');
      expect(rows).toHaveLength(count);
      expect(new Set(rows.map((r) => r.name)).size).toBe(count);
    } finally {
      await second?.destroy();
      await first.destroy();
    }
  });
});
