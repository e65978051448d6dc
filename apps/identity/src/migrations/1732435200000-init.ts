import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Init1732435200000 implements MigrationInterface {
  name = 'Init1732435200000';

  async up(q: QueryRunner): Promise<void> {
    // The event store: one stream per key, optimistic concurrency on (stream_id, version).
    // transaction_id lets the relay read only below the oldest transaction still in flight.
    await q.query(`CREATE TABLE events (
      global_position bigserial PRIMARY KEY,
      transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
      stream_id text NOT NULL,
      version integer NOT NULL,
      event_id text NOT NULL UNIQUE,
      type text NOT NULL,
      schema_version integer NOT NULL,
      tenant_id text NOT NULL,
      prefix text NOT NULL,
      actor jsonb NOT NULL,
      data jsonb NOT NULL,
      occurred_at timestamptz NOT NULL,
      CONSTRAINT events_stream_version UNIQUE (stream_id, version))`);
    await q.query(`CREATE INDEX events_relay_order ON events (transaction_id, global_position)`);
    await q.query(`CREATE TABLE relay_checkpoints (
      name text PRIMARY KEY,
      last_tx xid8 NOT NULL,
      last_position bigint NOT NULL)`);

    await q.query(`CREATE TABLE tenants (id text PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL)`);

    // Read model: the key list. Rebuilt from events by the rebuild command.
    await q.query(`CREATE TABLE keys (
      id text PRIMARY KEY,
      tenant_id text NOT NULL,
      name text NOT NULL,
      prefix text NOT NULL,
      scopes text[] NOT NULL,
      environment text NOT NULL,
      enabled boolean NOT NULL,
      revoked boolean NOT NULL,
      expired boolean NOT NULL,
      expires_at timestamptz,
      rate_limit jsonb,
      metadata jsonb NOT NULL,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      rotated_at timestamptz,
      last_used_at timestamptz,
      version integer NOT NULL)`);
    await q.query(`CREATE INDEX keys_tenant_list ON keys (tenant_id, created_at DESC, id DESC)`);
    await q.query(`CREATE INDEX keys_to_expire ON keys (expires_at) WHERE NOT revoked AND NOT expired AND expires_at IS NOT NULL`);

    // Credentials: the hash of each issued secret by its look-up id. Not derivable from events
    // (no hash is ever in an event), so the rebuild keeps the hashes and re-derives the rest.
    await q.query(`CREATE TABLE key_credentials (
      lookup_id text PRIMARY KEY,
      key_id text NOT NULL,
      hash text NOT NULL,
      valid_until timestamptz,
      created_at timestamptz NOT NULL)`);
    await q.query(`CREATE INDEX key_credentials_key ON key_credentials (key_id)`);

    await q.query(`CREATE TABLE users (
      id text PRIMARY KEY,
      tenant_id text NOT NULL,
      name text NOT NULL,
      email text NOT NULL,
      password_hash text NOT NULL,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL)`);
    await q.query(`CREATE UNIQUE INDEX users_tenant_email ON users (tenant_id, lower(email))`);
    await q.query(`CREATE INDEX users_tenant_list ON users (tenant_id, created_at DESC, id DESC)`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const t of ['users', 'key_credentials', 'keys', 'tenants', 'relay_checkpoints', 'events']) await q.query(`DROP TABLE ${t}`);
  }
}
