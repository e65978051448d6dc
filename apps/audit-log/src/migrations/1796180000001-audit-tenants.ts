import type { MigrationInterface, QueryRunner } from 'typeorm';

const LIFECYCLE = `'created', 'updated', 'enabled', 'disabled', 'rotated', 'rotation_completed', 'revoked', 'expired'`;
const MEMBERS = `'member.created', 'member.updated', 'member.deleted', 'member.signed_in', 'member.sign_in_failed'`;
const TENANTS = `'tenant.updated'`;

/**
 * Tenant events an operator causes (`keyway.tenants.<type>`) join the tenant trail as
 * `tenant.<type>`: like member events they name no key, so `key_id` and `prefix` are null and the
 * generated `environment` is `live`.
 */
export class AuditTenants1796180000001 implements MigrationInterface {
  name = 'AuditTenants1796180000001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE audit_events DROP CONSTRAINT audit_events_type_check`);
    await q.query(`ALTER TABLE audit_events ADD CONSTRAINT audit_events_type_check CHECK (type IN (${LIFECYCLE}, ${MEMBERS}, ${TENANTS}))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM audit_events WHERE type IN (${TENANTS})`);
    await q.query(`ALTER TABLE audit_events DROP CONSTRAINT audit_events_type_check`);
    await q.query(`ALTER TABLE audit_events ADD CONSTRAINT audit_events_type_check CHECK (type IN (${LIFECYCLE}, ${MEMBERS}))`);
  }
}
