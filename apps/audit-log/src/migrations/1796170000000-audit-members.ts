import type { MigrationInterface, QueryRunner } from 'typeorm';

const LIFECYCLE = `'created', 'updated', 'enabled', 'disabled', 'rotated', 'rotation_completed', 'revoked', 'expired'`;
const MEMBERS = `'member.created', 'member.updated', 'member.deleted', 'member.signed_in', 'member.sign_in_failed'`;

/**
 * Member events join the tenant trail (`member.<type>`): they name no key, so `key_id` and
 * `prefix` may be null; the generated `environment` of such a row is `live`.
 */
export class AuditMembers1796170000000 implements MigrationInterface {
  name = 'AuditMembers1796170000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE audit_events ALTER COLUMN key_id DROP NOT NULL, ALTER COLUMN prefix DROP NOT NULL`);
    await q.query(`ALTER TABLE audit_events DROP CONSTRAINT audit_events_type_check`);
    await q.query(`ALTER TABLE audit_events ADD CONSTRAINT audit_events_type_check CHECK (type IN (${LIFECYCLE}, ${MEMBERS}))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM audit_events WHERE key_id IS NULL OR prefix IS NULL`);
    await q.query(`ALTER TABLE audit_events DROP CONSTRAINT audit_events_type_check`);
    await q.query(`ALTER TABLE audit_events ADD CONSTRAINT audit_events_type_check CHECK (type IN (${LIFECYCLE}))`);
    await q.query(`ALTER TABLE audit_events ALTER COLUMN key_id SET NOT NULL, ALTER COLUMN prefix SET NOT NULL`);
  }
}
