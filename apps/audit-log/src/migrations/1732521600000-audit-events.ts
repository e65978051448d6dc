import type { MigrationInterface, QueryRunner } from 'typeorm';

export class AuditEvents1732521600000 implements MigrationInterface {
  name = 'AuditEvents1732521600000';

  async up(q: QueryRunner): Promise<void> {
    // The event id is the key: a redelivered or republished event is a no-op (ON CONFLICT DO NOTHING).
    // stream_seq is not unique: a recreated stream starts counting again; it only orders events
    // that share an occurred_at. recorded_at is when the row was written (ingest lag, the bench).
    await q.query(`CREATE TABLE audit_events (
      id text PRIMARY KEY,
      tenant_id text NOT NULL,
      key_id text NOT NULL,
      type text NOT NULL CHECK (type IN ('created', 'updated', 'enabled', 'disabled', 'rotated', 'revoked', 'expired', 'used')),
      schema_version integer NOT NULL,
      occurred_at timestamptz NOT NULL,
      prefix text NOT NULL,
      actor_type text NOT NULL,
      actor_id text NOT NULL,
      data jsonb NOT NULL,
      stream_seq bigint NOT NULL,
      recorded_at timestamptz NOT NULL DEFAULT clock_timestamp())`);
    // Both end in stream_seq so "newest first" pages are read straight off the index, ties included.
    await q.query(`CREATE INDEX audit_events_key_time ON audit_events (tenant_id, key_id, occurred_at DESC, stream_seq DESC)`);
    await q.query(`CREATE INDEX audit_events_tenant_time ON audit_events (tenant_id, occurred_at DESC, stream_seq DESC)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE audit_events');
  }
}
