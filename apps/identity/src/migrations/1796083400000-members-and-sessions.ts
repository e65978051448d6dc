import { dropNotifyOnInsertSql, outboxTableSql } from '@keyway/outbox';
import type { MigrationInterface, QueryRunner } from 'typeorm';

export const MEMBER_OUTBOX_TABLE = 'member_outbox';
export const MEMBER_OUTBOX_CHANNEL = 'keyway_member_outbox';

/**
 * Members get a role (every member made before roles existed could do everything: they become
 * admins), dashboard sessions (only the hash of a session's id is kept), the sign-in back-off per
 * (email, client address), and the outbox member events are relayed from.
 */
export class MembersAndSessions1796083400000 implements MigrationInterface {
  name = 'MembersAndSessions1796083400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE users ADD COLUMN role text NOT NULL DEFAULT 'admin' CHECK (role IN ('admin', 'developer', 'viewer'))`);
    // New members always name their role; the default only served the rows above.
    await q.query(`ALTER TABLE users ALTER COLUMN role DROP DEFAULT`);
    // Sign-in looks members up by email across tenants.
    await q.query(`CREATE INDEX users_email ON users (lower(email))`);
    await q.query(`CREATE TABLE sessions (
      hash text PRIMARY KEY,
      member_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      tenant_id text NOT NULL,
      created_at timestamptz NOT NULL,
      last_seen_at timestamptz NOT NULL,
      expires_at timestamptz NOT NULL)`);
    await q.query(`CREATE INDEX sessions_member ON sessions (member_id)`);
    await q.query(`CREATE INDEX sessions_expiry ON sessions (expires_at)`);
    await q.query(`CREATE TABLE sign_in_attempts (
      email text NOT NULL,
      client_address text NOT NULL,
      failures integer NOT NULL,
      blocked_until timestamptz,
      last_failure_at timestamptz NOT NULL,
      PRIMARY KEY (email, client_address))`);
    for (const s of outboxTableSql(MEMBER_OUTBOX_TABLE, MEMBER_OUTBOX_CHANNEL)) await q.query(s);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const s of dropNotifyOnInsertSql(MEMBER_OUTBOX_TABLE)) await q.query(s);
    for (const t of [MEMBER_OUTBOX_TABLE, 'sign_in_attempts', 'sessions']) await q.query(`DROP TABLE ${t}`);
    await q.query(`DROP INDEX users_email`);
    await q.query(`ALTER TABLE users DROP COLUMN role`);
  }
}
