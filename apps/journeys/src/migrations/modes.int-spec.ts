import { openServiceDatabase, serviceDatabaseUrl } from '@keyway/database';
import { startInfra, type TestInfra } from '@keyway/testing';
import { Init1732435200000 } from './1732435200000-init';
import { TouchpointCounts1764633600000 } from './1764633600000-touchpoint-counts';
import { migrations } from './index';

/** Journeys stored before test mode existed are live; the new constraints hold from then on. */
describe('modes and domain-events migrations', () => {
  let infra: TestInfra;
  beforeAll(async () => {
    infra = await startInfra('jmodesmig');
  });
  afterAll(() => infra?.stop());

  it('makes every stored journey live, partitions the list indexes by mode, and lets a journey lose its contact only through a deletion', async () => {
    const url = serviceDatabaseUrl(infra.databaseUrl, 'journeys');
    const before = await openServiceDatabase({ url, entities: [], migrations: [Init1732435200000, TouchpointCounts1764633600000], poolSize: 1 });
    try {
      await before.query(`INSERT INTO journeys (id, tenant_id, contact_id, anonymous_id, created_at) VALUES ('jr_a', 't', 'ct_1', NULL, now()), ('jr_b', 't', NULL, 'b', now())`);
      await before.query(`INSERT INTO touchpoints (id, journey_id, type, occurred_at) VALUES ('tp_1', 'jr_a', 'custom', now())`);
    } finally {
      await before.destroy();
    }

    const ds = await openServiceDatabase({ url, entities: [], migrations, poolSize: 1 });
    try {
      expect(await ds.query(`SELECT id, environment, touchpoint_count FROM journeys ORDER BY id`)).toEqual([
        { id: 'jr_a', environment: 'live', touchpoint_count: 1 },
        { id: 'jr_b', environment: 'live', touchpoint_count: 0 },
      ]);
      await expect(ds.query(`INSERT INTO journeys (id, tenant_id, environment, anonymous_id, created_at) VALUES ('jr_c', 't', 'staging', 'c', now())`)).rejects.toThrow();
      const indexes = ((await ds.query(`SELECT indexdef FROM pg_indexes WHERE tablename = 'journeys' AND indexname LIKE 'journeys_tenant%' ORDER BY indexname`)) as Array<{ indexdef: string }>).map(
        (r) => r.indexdef.replace(/^.* USING btree /, ''),
      );
      expect(indexes).toEqual([
        '(tenant_id, environment, contact_id, created_at DESC, id DESC) WHERE (contact_id IS NOT NULL)',
        '(tenant_id, environment, created_at DESC, id DESC)',
      ]);
      // Without any visitor id only when its contact was deleted.
      await expect(ds.query(`UPDATE journeys SET contact_id = NULL WHERE id = 'jr_a'`)).rejects.toThrow();
      await ds.query(`UPDATE journeys SET contact_id = NULL, contact_deleted_at = now() WHERE id = 'jr_a'`);
      expect(await ds.query(`SELECT count(*)::int AS n FROM outbox`)).toEqual([{ n: 0 }]);
    } finally {
      await ds.destroy();
    }
  });
});
