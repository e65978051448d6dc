import { dropDatabases, openServiceDatabase } from '@keyway/database';
import { pgAdminUrl, runId } from '@keyway/testing';
import type { MigrationInterface, QueryRunner } from 'typeorm';

/** A slow migration that leaves one row per run, so a second run shows. */
class Slow1700000000000 implements MigrationInterface {
  name = 'Slow1700000000000';
  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE IF NOT EXISTS ran (at timestamptz NOT NULL DEFAULT clock_timestamp())`);
    await q.query(`SELECT pg_sleep(0.5)`);
    await q.query(`INSERT INTO ran DEFAULT VALUES`);
  }
  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE ran`);
  }
}

class Second1700000000001 implements MigrationInterface {
  name = 'Second1700000000001';
  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE second (id int PRIMARY KEY)`);
  }
  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE second`);
  }
}

/** Only one replica migrates at a time: replicas booting together on a fresh database all come up, and each migration ran once. */
describe('migrations under an advisory lock', () => {
  const prefix = `keyway_t${runId()}_miglock_`;
  afterAll(() => dropDatabases(pgAdminUrl(), prefix));

  it('three concurrent runs on a fresh database all succeed, and the migrations ran once', async () => {
    const url = Object.assign(new URL(pgAdminUrl()), { pathname: `/${prefix}db` }).toString();
    const open = () => openServiceDatabase({ url, entities: [], migrations: [Slow1700000000000, Second1700000000001], poolSize: 1 });
    const results = await Promise.allSettled([open(), open(), open()]);
    const sources = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    try {
      expect(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
      const ds = sources[0]!;
      expect(await ds.query(`SELECT count(*)::int AS n FROM ran`)).toEqual([{ n: 1 }]);
      expect((await ds.query(`SELECT name FROM migrations ORDER BY id`)).map((r: { name: string }) => r.name)).toEqual(['Slow1700000000000', 'Second1700000000001']);
    } finally {
      await Promise.all(sources.map((ds) => ds.destroy()));
    }
  });
});
