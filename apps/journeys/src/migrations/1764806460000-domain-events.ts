import { outboxTableSql } from '@keyway/outbox';
import type { MigrationInterface, QueryRunner } from 'typeorm';

export const OUTBOX_TABLE = 'outbox';
export const OUTBOX_CHANNEL = 'journeys_outbox';

/**
 * Domain events (DESIGN "Domain events"):
 * - `outbox`: `keyway.journeys.*` events, written in the same transaction as the change and moved
 *   to JetStream by the shared relay (`@keyway/outbox`), which keeps its place in
 *   `relay_checkpoints`;
 * - `deleted_contacts`: what journeys learnt from `keyway.contacts.deleted`. A journey keeps its
 *   history when its contact is deleted, only the link goes (`contact_id` null,
 *   `contact_deleted_at` set). The tombstone stays, so a journey written with that id afterwards
 *   (its contacts check raced the deletion) is refused rather than linked to nobody, and a
 *   redelivered event changes nothing.
 * A journey whose contact was deleted may be left with no visitor id at all, so the visitor check
 * allows that one case.
 */
export class DomainEvents1764806460000 implements MigrationInterface {
  name = 'DomainEvents1764806460000';

  async up(q: QueryRunner): Promise<void> {
    for (const sql of outboxTableSql(OUTBOX_TABLE, OUTBOX_CHANNEL)) await q.query(sql);
    await q.query(`CREATE TABLE relay_checkpoints (
      name text PRIMARY KEY,
      last_tx xid8 NOT NULL,
      last_position bigint NOT NULL)`);
    await q.query(`CREATE TABLE deleted_contacts (
      tenant_id text NOT NULL,
      contact_id text NOT NULL,
      deleted_at timestamptz NOT NULL,
      event_id text NOT NULL,
      PRIMARY KEY (tenant_id, contact_id))`);
    await q.query(`ALTER TABLE journeys ADD COLUMN contact_deleted_at timestamptz`);
    await q.query(`ALTER TABLE journeys DROP CONSTRAINT journeys_has_visitor`);
    await q.query(`ALTER TABLE journeys ADD CONSTRAINT journeys_has_visitor
      CHECK (contact_id IS NOT NULL OR anonymous_id IS NOT NULL OR contact_deleted_at IS NOT NULL)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM journeys WHERE contact_id IS NULL AND anonymous_id IS NULL`);
    await q.query(`ALTER TABLE journeys DROP CONSTRAINT journeys_has_visitor`);
    await q.query(`ALTER TABLE journeys ADD CONSTRAINT journeys_has_visitor CHECK (contact_id IS NOT NULL OR anonymous_id IS NOT NULL)`);
    await q.query(`ALTER TABLE journeys DROP COLUMN contact_deleted_at`);
    await q.query(`DROP TABLE deleted_contacts`);
    await q.query(`DROP TABLE relay_checkpoints`);
    await q.query(`DROP TABLE ${OUTBOX_TABLE}`);
    await q.query(`DROP FUNCTION ${OUTBOX_TABLE}_notify_relay()`);
  }
}
