import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Key names unique per tenant and mode among non-revoked keys (issue 12), and what the key view
 * shows during a rotation grace (issue 11).
 *
 * Existing databases may hold duplicate names already, and this migration must not fail on them
 * nor rename a customer's key behind its back: of each group of non-revoked keys sharing a name in
 * one tenant and mode, the oldest claims the name and the others keep it unclaimed (outside the
 * unique index) until they are renamed. Root keys never claim theirs: the operator names them,
 * and a new root key exists beside the one it replaces until that one is revoked.
 */
export class KeyNamesAndGrace1796083200000 implements MigrationInterface {
  name = 'KeyNamesAndGrace1796083200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE keys ADD COLUMN name_claimed boolean NOT NULL DEFAULT true`);
    await q.query(`UPDATE keys SET name_claimed = false WHERE root`);
    await q.query(`UPDATE keys k SET name_claimed = false
      WHERE NOT k.revoked AND NOT k.root AND EXISTS (
        SELECT 1 FROM keys o
         WHERE o.tenant_id = k.tenant_id AND o.environment = k.environment AND o.name = k.name
           AND NOT o.revoked AND NOT o.root AND (o.created_at, o.id) < (k.created_at, k.id))`);
    await q.query(`CREATE UNIQUE INDEX keys_name_unique ON keys (tenant_id, environment, name) WHERE name_claimed AND NOT revoked`);

    // The end of the latest grace (the latest end among the key's older secrets), and the last use
    // of an older secret, which the key view shows while that grace lasts.
    await q.query(`ALTER TABLE keys ADD COLUMN grace_until timestamptz`);
    await q.query(`ALTER TABLE keys ADD COLUMN previous_secret_last_used_at timestamptz`);
    await q.query(`UPDATE keys k SET grace_until = g.until
      FROM (SELECT c.key_id, max(c.valid_until) AS until FROM key_credentials c GROUP BY c.key_id) g
      WHERE g.key_id = k.id AND g.until IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE keys DROP COLUMN previous_secret_last_used_at`);
    await q.query(`ALTER TABLE keys DROP COLUMN grace_until`);
    await q.query(`DROP INDEX keys_name_unique`);
    await q.query(`ALTER TABLE keys DROP COLUMN name_claimed`);
  }
}
