import { dropRelaySequenceSql, relaySequenceSql } from '@keyway/outbox';
import type { MigrationInterface, QueryRunner } from 'typeorm';
import { OUTBOX_TABLE } from './1764806400000-modes-upserts-events';

/**
 * The relay records the JetStream sequence that acknowledged each outbox row, so it can tell when
 * the stream has lost some (OutboxRelay's loss check), and `created_at` for the commit → ack lag.
 */
export class RelaySequences1796260000000 implements MigrationInterface {
  name = 'RelaySequences1796260000000';

  async up(q: QueryRunner): Promise<void> {
    for (const s of relaySequenceSql(OUTBOX_TABLE, { createdAt: true })) await q.query(s);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const s of dropRelaySequenceSql(OUTBOX_TABLE, { createdAt: true })) await q.query(s);
  }
}
