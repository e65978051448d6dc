import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `from`/`to` on the tenant trail read the range's stream sequences from the index alone (an
 * index-only scan, then a top-N sort of integers) and only the rows of the page from the table:
 * the index carries the keyset column (`stream_seq`) after the time, and a mode-bound caller has
 * one with `environment` before it. `(tenant_id, occurred_at)` made every row of the range a heap
 * read (1,000,000 entries: a one-day page took ~1 s). Neither index names a chain column, so
 * linking stays a HOT update.
 */
export class AuditTimeRange1796180000000 implements MigrationInterface {
  name = 'AuditTimeRange1796180000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX audit_events_tenant_time`);
    await q.query(`CREATE INDEX audit_events_time ON audit_events (tenant_id, occurred_at, stream_seq)`);
    await q.query(`CREATE INDEX audit_events_env_time ON audit_events (tenant_id, environment, occurred_at, stream_seq)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX audit_events_env_time`);
    await q.query(`DROP INDEX audit_events_time`);
    await q.query(`CREATE INDEX audit_events_tenant_time ON audit_events (tenant_id, occurred_at)`);
  }
}
