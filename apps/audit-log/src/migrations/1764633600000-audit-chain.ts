import type { MigrationInterface, QueryRunner } from 'typeorm';

const LIFECYCLE = `'created', 'updated', 'enabled', 'disabled', 'rotated', 'rotation_completed', 'revoked', 'expired'`;

/**
 * The tenant trail as a hash chain (src/chain). `used` events left the trail for the usage module:
 * their rows go. Each row gains its mode (from the prefix), its seal (written at ingest), and once
 * linked its position in the tenant's chain and its link. `audit_heads` holds each tenant's head:
 * the row the linker locks, and the per-mode counts that make a page's total free.
 */
export class AuditChain1764633600000 implements MigrationInterface {
  name = 'AuditChain1764633600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM audit_events WHERE type = 'used'`);
    await q.query(`ALTER TABLE audit_events DROP CONSTRAINT IF EXISTS audit_events_type_check`);
    await q.query(`ALTER TABLE audit_events ADD CONSTRAINT audit_events_type_check CHECK (type IN (${LIFECYCLE}))`);
    await q.query(`ALTER TABLE audit_events
      ADD COLUMN environment text GENERATED ALWAYS AS (CASE WHEN starts_with(prefix, 'kw_test_') THEN 'test' ELSE 'live' END) STORED,
      ADD COLUMN seal bytea,
      ADD COLUMN chain_pos bigint,
      ADD COLUMN hash bytea`);
    // Rows stored before the chain existed carry no seal: the first boot with a key seals them
    // (AuditLinker.sealLegacyRows) while this marker is here, then removes it.
    await q.query(`CREATE TABLE audit_chain_legacy (pending boolean PRIMARY KEY)`);
    await q.query(`INSERT INTO audit_chain_legacy SELECT true WHERE EXISTS (SELECT 1 FROM audit_events)`);

    await q.query(`CREATE TABLE audit_heads (
      tenant_id text PRIMARY KEY,
      position bigint NOT NULL DEFAULT 0,
      hash bytea,
      stream_seq bigint NOT NULL DEFAULT 0,
      live_count bigint NOT NULL DEFAULT 0,
      test_count bigint NOT NULL DEFAULT 0)`);
    await q.query(`INSERT INTO audit_heads (tenant_id) SELECT DISTINCT tenant_id FROM audit_events`);

    // One position per tenant; newest first is this index read backwards (keyset on chain_pos).
    await q.query(`CREATE UNIQUE INDEX audit_events_chain ON audit_events (tenant_id, chain_pos)`);
    await q.query(`CREATE INDEX audit_events_env_chain ON audit_events (tenant_id, environment, chain_pos) WHERE chain_pos IS NOT NULL`);
    await q.query(`CREATE INDEX audit_events_key_chain ON audit_events (tenant_id, key_id, chain_pos) WHERE chain_pos IS NOT NULL`);
    await q.query(`CREATE INDEX audit_events_type_chain ON audit_events (tenant_id, type, chain_pos) WHERE chain_pos IS NOT NULL`);
    await q.query(`CREATE INDEX audit_events_actor_chain ON audit_events (tenant_id, actor_type, actor_id, chain_pos) WHERE chain_pos IS NOT NULL`);
    // What the linker looks for: stored rows not yet linked, in stream order. Small by design.
    await q.query(`CREATE INDEX audit_events_unlinked ON audit_events (tenant_id, stream_seq) WHERE chain_pos IS NULL`);
    // The key logs keep their order (occurred_at, then stream order); time filters use the same index.
    await q.query(`DROP INDEX audit_events_tenant_time`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`CREATE INDEX audit_events_tenant_time ON audit_events (tenant_id, occurred_at DESC, stream_seq DESC)`);
    for (const i of ['chain', 'env_chain', 'key_chain', 'type_chain', 'actor_chain', 'unlinked']) await q.query(`DROP INDEX audit_events_${i}`);
    await q.query('DROP TABLE audit_heads');
    await q.query('DROP TABLE audit_chain_legacy');
    await q.query('ALTER TABLE audit_events DROP COLUMN environment, DROP COLUMN seal, DROP COLUMN chain_pos, DROP COLUMN hash');
    await q.query(`ALTER TABLE audit_events DROP CONSTRAINT audit_events_type_check`);
    await q.query(`ALTER TABLE audit_events ADD CONSTRAINT audit_events_type_check CHECK (type IN (${LIFECYCLE}, 'used'))`);
  }
}
