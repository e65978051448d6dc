import { outboxTableSql } from '@keyway/outbox';
import type { MigrationInterface, QueryRunner } from 'typeorm';

export const OUTBOX_TABLE = 'outbox';
export const OUTBOX_CHANNEL = 'contacts_outbox';

/**
 * Test mode, upserts, search and domain events (issue 12):
 * - `environment` on both tables: every row so far was written by a live key (or before modes
 *   existed), so existing rows are `live`. No default afterwards: every write names its mode.
 * - Every index leads with (tenant_id, environment): a mode's reads never walk the other mode's
 *   entries, and uniqueness (email, external_id) is per tenant and mode.
 * - A contact's account must be of the same tenant and mode, held by the database itself: a
 *   composite foreign key, whose delete action clears only `account_id` (Postgres 15).
 * - `q`: one trigram GIN index per mode on `name || ' ' || email`, with the tenant as a btree_gin
 *   key, so a search reads only its tenant's matches (see the README for the measurements).
 * - `outbox` and `relay_checkpoints` for the shared relay (`@keyway/outbox`).
 */
export class ModesUpsertsEvents1764806400000 implements MigrationInterface {
  name = 'ModesUpsertsEvents1764806400000';

  async up(q: QueryRunner): Promise<void> {
    // Both are trusted extensions: the database's owner may create them, no superuser needed.
    await q.query(`CREATE EXTENSION IF NOT EXISTS pg_trgm`);
    await q.query(`CREATE EXTENSION IF NOT EXISTS btree_gin`);

    for (const table of ['accounts', 'contacts']) {
      await q.query(`ALTER TABLE ${table} ADD COLUMN environment text NOT NULL DEFAULT 'live' CHECK (environment IN ('live', 'test'))`);
      await q.query(`ALTER TABLE ${table} ALTER COLUMN environment DROP DEFAULT`);
    }
    await q.query(`ALTER TABLE accounts ADD COLUMN external_id text`);

    await q.query(`DROP INDEX accounts_tenant_created`);
    await q.query(`CREATE INDEX accounts_list ON accounts (tenant_id, environment, created_at DESC, id DESC)`);
    await q.query(`CREATE UNIQUE INDEX accounts_external ON accounts (tenant_id, environment, external_id) WHERE external_id IS NOT NULL`);
    await q.query(`ALTER TABLE accounts ADD CONSTRAINT accounts_id_tenant_mode UNIQUE (id, tenant_id, environment)`);

    await q.query(`ALTER TABLE contacts DROP CONSTRAINT contacts_account_id_fkey`);
    await q.query(`ALTER TABLE contacts ADD CONSTRAINT contacts_account FOREIGN KEY (account_id, tenant_id, environment)
      REFERENCES accounts (id, tenant_id, environment) ON DELETE SET NULL (account_id)`);
    for (const index of ['contacts_tenant_email', 'contacts_tenant_external', 'contacts_tenant_created', 'contacts_tenant_account']) await q.query(`DROP INDEX ${index}`);
    await q.query(`CREATE UNIQUE INDEX contacts_email ON contacts (tenant_id, environment, lower(email))`);
    await q.query(`CREATE UNIQUE INDEX contacts_external ON contacts (tenant_id, environment, external_id) WHERE external_id IS NOT NULL`);
    await q.query(`CREATE INDEX contacts_list ON contacts (tenant_id, environment, created_at DESC, id DESC)`);
    await q.query(`CREATE INDEX contacts_by_type ON contacts (tenant_id, environment, type, created_at DESC, id DESC)`);
    await q.query(`CREATE INDEX contacts_by_account ON contacts (tenant_id, environment, account_id, created_at DESC, id DESC)`);
    for (const mode of ['live', 'test']) {
      await q.query(`CREATE INDEX contacts_search_${mode} ON contacts USING gin (tenant_id, (name || ' ' || email) gin_trgm_ops) WHERE environment = '${mode}'`);
    }

    for (const sql of outboxTableSql(OUTBOX_TABLE, OUTBOX_CHANNEL)) await q.query(sql);
    await q.query(`CREATE TABLE relay_checkpoints (
      name text PRIMARY KEY,
      last_tx xid8 NOT NULL,
      last_position bigint NOT NULL)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE relay_checkpoints`);
    await q.query(`DROP TABLE ${OUTBOX_TABLE}`);
    await q.query(`DROP FUNCTION ${OUTBOX_TABLE}_notify_relay()`);
    for (const mode of ['live', 'test']) await q.query(`DROP INDEX contacts_search_${mode}`);
    for (const index of ['contacts_email', 'contacts_external', 'contacts_list', 'contacts_by_type', 'contacts_by_account', 'accounts_list', 'accounts_external']) await q.query(`DROP INDEX ${index}`);
    await q.query(`ALTER TABLE contacts DROP CONSTRAINT contacts_account`);
    await q.query(`ALTER TABLE accounts DROP CONSTRAINT accounts_id_tenant_mode`);
    await q.query(`ALTER TABLE contacts ADD CONSTRAINT contacts_account_id_fkey FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE SET NULL`);
    // Test rows cannot go back to a table without modes (their emails may clash with live ones).
    await q.query(`DELETE FROM contacts WHERE environment = 'test'`);
    await q.query(`DELETE FROM accounts WHERE environment = 'test'`);
    await q.query(`ALTER TABLE contacts DROP COLUMN environment`);
    await q.query(`ALTER TABLE accounts DROP COLUMN environment, DROP COLUMN external_id`);
    await q.query(`CREATE UNIQUE INDEX contacts_tenant_email ON contacts (tenant_id, lower(email))`);
    await q.query(`CREATE UNIQUE INDEX contacts_tenant_external ON contacts (tenant_id, external_id) WHERE external_id IS NOT NULL`);
    await q.query(`CREATE INDEX contacts_tenant_created ON contacts (tenant_id, created_at DESC, id DESC)`);
    await q.query(`CREATE INDEX contacts_tenant_account ON contacts (tenant_id, account_id)`);
    await q.query(`CREATE INDEX accounts_tenant_created ON accounts (tenant_id, created_at DESC, id DESC)`);
  }
}
