import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A batch's turn moves the head of every tenant in it: with 1,000 active tenants, about 0.3 head
 * updates per event stored. Packed full (fillfactor 100), 93 % of those updates found no room on
 * their page, so each wrote its new row version to another page and a new entry in the primary
 * key's index. Half-full pages leave room for a new version of every row on the page, so an update
 * stays on its page and touches no index (HOT), and the dead versions of the previous batch are
 * pruned in place. The table holds one small row per tenant: twice its pages is little.
 */
export class AuditHeadsRoom1796190000000 implements MigrationInterface {
  name = 'AuditHeadsRoom1796190000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE audit_heads SET (fillfactor = 50)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE audit_heads RESET (fillfactor)`);
  }
}
