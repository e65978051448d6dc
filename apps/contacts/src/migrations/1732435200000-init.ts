import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Init1732435200000 implements MigrationInterface {
  name = 'Init1732435200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE accounts (
      id text PRIMARY KEY,
      tenant_id text NOT NULL,
      name text NOT NULL,
      domain text,
      properties jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL)`);
    await q.query(`CREATE INDEX accounts_tenant_created ON accounts (tenant_id, created_at DESC, id DESC)`);
    await q.query(`CREATE TABLE contacts (
      id text PRIMARY KEY,
      tenant_id text NOT NULL,
      type text NOT NULL CHECK (type IN ('user', 'lead', 'partner')),
      name text NOT NULL,
      email text NOT NULL,
      external_id text,
      account_id text REFERENCES accounts (id) ON DELETE SET NULL,
      properties jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL)`);
    await q.query(`CREATE UNIQUE INDEX contacts_tenant_email ON contacts (tenant_id, lower(email))`);
    await q.query(`CREATE UNIQUE INDEX contacts_tenant_external ON contacts (tenant_id, external_id) WHERE external_id IS NOT NULL`);
    await q.query(`CREATE INDEX contacts_tenant_created ON contacts (tenant_id, created_at DESC, id DESC)`);
    await q.query(`CREATE INDEX contacts_tenant_account ON contacts (tenant_id, account_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE contacts');
    await q.query('DROP TABLE accounts');
  }
}
