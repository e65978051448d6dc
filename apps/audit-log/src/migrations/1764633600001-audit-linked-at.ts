import type { MigrationInterface, QueryRunner } from 'typeorm';

/** When the linker linked each row: the ingest lag an operator (and the bench) reads. */
export class AuditLinkedAt1764633600001 implements MigrationInterface {
  name = 'AuditLinkedAt1764633600001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE audit_events ADD COLUMN linked_at timestamptz`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE audit_events DROP COLUMN linked_at`);
  }
}
