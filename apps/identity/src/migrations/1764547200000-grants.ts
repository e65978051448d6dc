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
    // Root keys made before the mark, by the recorded fact: until now only the operator's tenant
    // route created keys as the operator, and each was a root key (a name can be changed or reused).
    await q.query(`UPDATE keys SET root = true WHERE id IN (
      SELECT stream_id FROM events WHERE version = 1 AND type = 'created' AND actor->>'type' = 'operator')`);
    await q.query(`CREATE INDEX keys_tenant_root ON keys (tenant_id) WHERE root AND NOT revoked`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX keys_tenant_root`);
    await q.query(`ALTER TABLE keys DROP COLUMN root`);
    await q.query(`ALTER TABLE tenants DROP COLUMN rate_limit_ceiling`);
  }
}
