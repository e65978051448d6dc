import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The usage module's tables (apps/audit-log/src/usage): the durable record of key use, per key per
 * minute, and what the routes need to know of each key without reading identity's tables.
 */
export class Usage1796158800000 implements MigrationInterface {
  name = 'Usage1796158800000';

  async up(q: QueryRunner): Promise<void> {
    // One row per key per UTC minute, summed over every gateway's `used` events.
    await q.query(`CREATE TABLE usage_minutes (
      tenant_id text NOT NULL,
      key_id text NOT NULL,
      minute timestamptz NOT NULL CHECK (date_trunc('minute', minute) = minute),
      requests bigint NOT NULL CHECK (requests >= 0),
      rate_limited bigint NOT NULL CHECK (rate_limited >= 0),
      PRIMARY KEY (tenant_id, key_id, minute))`);
    // The last time each scope was needed by an admitted call of the key.
    await q.query(`CREATE TABLE usage_scopes (
      tenant_id text NOT NULL,
      key_id text NOT NULL,
      scope text NOT NULL,
      last_used_at timestamptz NOT NULL,
      PRIMARY KEY (tenant_id, key_id, scope))`);
    // Until when a key's use is known without its scopes (v1 events): the scope report is complete only after.
    await q.query(`CREATE TABLE usage_scope_gaps (
      tenant_id text NOT NULL,
      key_id text NOT NULL,
      unknown_until timestamptz NOT NULL,
      PRIMARY KEY (tenant_id, key_id))`);
    // Event ids applied, in the same transaction as their sums: a redelivery adds nothing. Pruned
    // once KEYWAY_USAGE (35 days) can no longer deliver them.
    await q.query(`CREATE TABLE usage_applied_events (
      event_id text PRIMARY KEY,
      applied_at timestamptz NOT NULL DEFAULT now())`);
    await q.query(`CREATE INDEX usage_applied_events_applied_at ON usage_applied_events (applied_at)`);
    // From when usage was recorded at all (the oldest event KEYWAY_USAGE held when this began).
    await q.query(`CREATE TABLE usage_tracking (
      id boolean PRIMARY KEY DEFAULT true CHECK (id),
      complete_from timestamptz NOT NULL)`);
    // A projection of each key from its lifecycle events on KEYWAY: enough to answer 404 for a key
    // of another tenant or mode, and the scopes it holds. environment is null until `created` is
    // applied (a later event may arrive first after a redelivery): such a key is not known yet.
    await q.query(`CREATE TABLE usage_keys (
      key_id text PRIMARY KEY,
      tenant_id text NOT NULL,
      environment text CHECK (environment IN ('live', 'test')),
      scopes text[] NOT NULL DEFAULT '{}',
      scopes_version integer NOT NULL DEFAULT -1,
      created_at timestamptz,
      revoked boolean NOT NULL DEFAULT false)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE usage_keys, usage_tracking, usage_applied_events, usage_scope_gaps, usage_scopes, usage_minutes');
  }
}
