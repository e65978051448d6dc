import type { MigrationInterface, QueryRunner } from 'typeorm';

const CHAIN_INDEXES = ['chain', 'env_chain', 'key_chain', 'type_chain', 'actor_chain', 'unlinked'];

/**
 * Linking writes `chain_pos`, `hash` and `linked_at` into every row once. With those columns in
 * indexes (or index predicates) every link was a full new row version plus an entry in each
 * index; now no index names them, so a link is a HOT update (same page, no index touched) when the
 * page has room: fillfactor 50 leaves room for a whole page of rows linked in one transaction.
 *
 * Lists order and page by `(tenant_id, stream_seq)`: the linker links each tenant's rows in stream
 * order and never behind its head, so among linked rows that is chain order (stream_seq restarts
 * only with a recreated stream, which needs a rebuild anyway: the linker refuses rows behind a head).
 * `from`/`to` get an index of their own. The linker finds new rows by stream sequence past its
 * cursor (`audit_linker`), not through an index on unlinked rows.
 */
export class AuditHotLinks1796170000001 implements MigrationInterface {
  name = 'AuditHotLinks1796170000001';

  async up(q: QueryRunner): Promise<void> {
    for (const i of CHAIN_INDEXES) await q.query(`DROP INDEX audit_events_${i}`);
    await q.query(`CREATE INDEX audit_events_trail ON audit_events (tenant_id, stream_seq)`);
    await q.query(`CREATE INDEX audit_events_env_trail ON audit_events (tenant_id, environment, stream_seq)`);
    await q.query(`CREATE INDEX audit_events_key_trail ON audit_events (tenant_id, key_id, stream_seq)`);
    await q.query(`CREATE INDEX audit_events_type_trail ON audit_events (tenant_id, type, stream_seq)`);
    await q.query(`CREATE INDEX audit_events_actor_trail ON audit_events (tenant_id, actor_type, actor_id, stream_seq)`);
    await q.query(`CREATE INDEX audit_events_tenant_time ON audit_events (tenant_id, occurred_at)`);
    await q.query(`CREATE INDEX audit_events_seq ON audit_events (stream_seq)`);
    // Applies to pages written from now on (a VACUUM FULL would repack the old ones).
    await q.query(`ALTER TABLE audit_events SET (fillfactor = 50)`);
    // The linker's cursor: every row at or below it has been linked or refused. It starts below the
    // oldest unlinked row, so what was waiting before this migration is linked as before.
    await q.query(`CREATE TABLE audit_linker (one boolean PRIMARY KEY DEFAULT true CHECK (one), stream_seq bigint NOT NULL)`);
    await q.query(`INSERT INTO audit_linker (stream_seq)
      SELECT COALESCE((SELECT min(stream_seq) - 1 FROM audit_events WHERE chain_pos IS NULL), (SELECT max(stream_seq) FROM audit_events), 0)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE audit_linker');
    await q.query(`ALTER TABLE audit_events RESET (fillfactor)`);
    for (const i of ['trail', 'env_trail', 'key_trail', 'type_trail', 'actor_trail', 'tenant_time', 'seq']) await q.query(`DROP INDEX audit_events_${i}`);
    // Back to the chain-ordered indexes of 1764633600000 (one statement per index, built from a table).
    await q.query(`CREATE UNIQUE INDEX audit_events_chain ON audit_events (tenant_id, chain_pos)`);
    const linked: Array<[string, string]> = [['env', 'environment'], ['key', 'key_id'], ['type', 'type'], ['actor', 'actor_type, actor_id']];
    for (const [name, cols] of linked) {
      await q.query(`CREATE INDEX audit_events_${name}_chain ON audit_events (tenant_id, ${cols}, chain_pos) WHERE chain_pos IS NOT NULL`);
    }
    await q.query(`CREATE INDEX audit_events_unlinked ON audit_events (tenant_id, stream_seq) WHERE chain_pos IS NULL`);
  }
}
