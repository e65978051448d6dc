import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Grants (DESIGN, "Grants"): root keys are marked, so the operator can replace them, and each
 * tenant has a ceiling no key's limits may pass (null: the defaults in contracts).
 */
export class Grants1764547200000 implements MigrationInterface {
  name = 'Grants1764547200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tenants ADD COLUMN rate_limit_ceiling jsonb`);
    await q.query(`ALTER TABLE keys ADD COLUMN root boolean NOT NULL DEFAULT false`);
    // Root keys made before the mark: the tenant's first key, named so by the tenant route.
    await q.query(`UPDATE keys SET root = true WHERE id IN (
      SELECT DISTINCT ON (tenant_id) id FROM keys WHERE name = 'Root key' ORDER BY tenant_id, created_at)`);
    await q.query(`CREATE INDEX keys_tenant_root ON keys (tenant_id) WHERE root AND NOT revoked`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX keys_tenant_root`);
    await q.query(`ALTER TABLE keys DROP COLUMN root`);
    await q.query(`ALTER TABLE tenants DROP COLUMN rate_limit_ceiling`);
  }
}
