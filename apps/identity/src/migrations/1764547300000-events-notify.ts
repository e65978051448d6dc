import { dropNotifyOnInsertSql, notifyOnInsertSql } from '@keyway/outbox';
import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The relay is woken at commit by the events table itself (a statement trigger), not by a NOTIFY
 * each writer must remember to add to its statement.
 */
export class EventsNotify1764547300000 implements MigrationInterface {
  name = 'EventsNotify1764547300000';

  async up(q: QueryRunner): Promise<void> {
    for (const s of notifyOnInsertSql('events', 'keyway_events')) await q.query(s);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const s of dropNotifyOnInsertSql('events')) await q.query(s);
  }
}
