import { dropRelaySequenceSql, relaySequenceSql } from '@keyway/outbox';
import type { MigrationInterface, QueryRunner } from 'typeorm';
import { MEMBER_OUTBOX_TABLE } from './1796083400000-members-and-sessions';

/**
 * The relays record the JetStream sequence that acknowledged each event, so they can tell when
 * the stream has lost some (OutboxRelay's loss check). The event store has its `occurred_at`; the
 * member outbox gets a `created_at` for the commit → ack lag.
 */
export class RelaySequences1796260000000 implements MigrationInterface {
  name = 'RelaySequences1796260000000';

  async up(q: QueryRunner): Promise<void> {
    for (const s of relaySequenceSql('events', { createdAt: false })) await q.query(s);
    for (const s of relaySequenceSql(MEMBER_OUTBOX_TABLE, { createdAt: true })) await q.query(s);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const s of dropRelaySequenceSql(MEMBER_OUTBOX_TABLE, { createdAt: true })) await q.query(s);
    for (const s of dropRelaySequenceSql('events', { createdAt: false })) await q.query(s);
  }
}
