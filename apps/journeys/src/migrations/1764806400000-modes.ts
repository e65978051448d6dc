import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Test mode (DESIGN "Test mode"): every journey belongs to one mode, `live` or `test`, and is
 * invisible to the other. Journeys stored before modes existed are live (a column default is
 * metadata only in Postgres 11+: no table rewrite). The list indexes lead with (tenant_id,
 * environment), so a tenant's test journeys occupy their own range of each index and never lie
 * between its live ones: test data cannot slow a live read. Touchpoints and conversions are read
 * through their journey only, so they need no column of their own.
 */
export class Modes1764806400000 implements MigrationInterface {
  name = 'Modes1764806400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE journeys ADD COLUMN environment text NOT NULL DEFAULT 'live' CHECK (environment IN ('live', 'test'))`);
    await q.query(`DROP INDEX journeys_tenant_created`);
    await q.query(`DROP INDEX journeys_tenant_contact`);
    await q.query(`CREATE INDEX journeys_tenant_mode_created ON journeys (tenant_id, environment, created_at DESC, id DESC)`);
    await q.query(
      `CREATE INDEX journeys_tenant_mode_contact ON journeys (tenant_id, environment, contact_id, created_at DESC, id DESC) WHERE contact_id IS NOT NULL`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX journeys_tenant_mode_contact`);
    await q.query(`DROP INDEX journeys_tenant_mode_created`);
    await q.query(`CREATE INDEX journeys_tenant_created ON journeys (tenant_id, created_at DESC, id DESC)`);
    await q.query(`CREATE INDEX journeys_tenant_contact ON journeys (tenant_id, contact_id, created_at DESC, id DESC) WHERE contact_id IS NOT NULL`);
    await q.query(`ALTER TABLE journeys DROP COLUMN environment`);
  }
}
