import { openServiceDatabase, serviceDatabaseUrl } from '@keyway/database';
import { startInfra, type TestInfra } from '@keyway/testing';
import { Init1732435200000 } from './1732435200000-init';
import { migrations } from './index';

/** Journeys stored before the counts existed get them at migration, and every later insert is counted. */
describe('touchpoint-counts migration', () => {
  let infra: TestInfra;
  beforeAll(async () => {
    infra = await startInfra('tpcounts');
  });
  afterAll(() => infra?.stop());

  it('counts what is stored, then follows every insert however it is made', async () => {
    const url = serviceDatabaseUrl(infra.databaseUrl, 'journeys');
    const before = await openServiceDatabase({ url, entities: [], migrations: [Init1732435200000], poolSize: 1 });
    try {
      await before.query(`INSERT INTO journeys (id, tenant_id, anonymous_id, created_at) VALUES ('jr_a', 't', 'a', now()), ('jr_b', 't', 'b', now())`);
      await before.query(`INSERT INTO touchpoints (id, journey_id, type, occurred_at) SELECT 'tp_' || g, 'jr_a', 'custom', now() FROM generate_series(1, 3) g`);
      await before.query(`INSERT INTO conversions (id, journey_id, name, occurred_at) VALUES ('cv_1', 'jr_a', 'x', now()), ('cv_2', 'jr_a', 'y', now())`);
    } finally {
      await before.destroy();
    }

    const ds = await openServiceDatabase({ url, entities: [], migrations, poolSize: 1 });
    try {
      const counts = async () => ds.query(`SELECT id, touchpoint_count, conversion_count FROM journeys ORDER BY id`);
      expect(await counts()).toEqual([
        { id: 'jr_a', touchpoint_count: 3, conversion_count: 2 },
        { id: 'jr_b', touchpoint_count: 0, conversion_count: 0 },
      ]);
      // One statement for two journeys, then single rows, then one that fails: only committed rows count.
      await ds.query(`INSERT INTO touchpoints (id, journey_id, type, occurred_at) VALUES ('tp_x', 'jr_a', 'custom', now()), ('tp_y', 'jr_b', 'custom', now()), ('tp_z', 'jr_b', 'custom', now())`);
      await ds.query(`INSERT INTO conversions (id, journey_id, name, occurred_at) VALUES ('cv_3', 'jr_b', 'z', now())`);
      await expect(ds.query(`INSERT INTO touchpoints (id, journey_id, type, occurred_at) VALUES ('tp_w', 'jr_b', 'custom', now()), ('tp_x', 'jr_b', 'custom', now())`)).rejects.toThrow();
      expect(await counts()).toEqual([
        { id: 'jr_a', touchpoint_count: 4, conversion_count: 2 },
        { id: 'jr_b', touchpoint_count: 2, conversion_count: 1 },
      ]);
      // Deleting a journey takes its rows with it; the counters do not get in the way of the cascade.
      await ds.query(`DELETE FROM journeys WHERE id = 'jr_a'`);
      expect(await ds.query(`SELECT count(*)::int AS n FROM touchpoints`)).toEqual([{ n: 2 }]);
    } finally {
      await ds.destroy();
    }
  });
});
