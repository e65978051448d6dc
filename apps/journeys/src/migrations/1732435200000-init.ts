import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Touchpoints and conversions live in their own tables, indexed by journey and time, so adding
 * one is a single-row INSERT rather than a rewrite of a growing JSON document. `seq` keeps
 * insertion order among events that share an `occurred_at`.
 */
export class Init1732435200000 implements MigrationInterface {
  name = 'Init1732435200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE journeys (
      id text PRIMARY KEY,
      tenant_id text NOT NULL,
      contact_id text,
      anonymous_id text,
      created_at timestamptz NOT NULL,
      CONSTRAINT journeys_has_visitor CHECK (contact_id IS NOT NULL OR anonymous_id IS NOT NULL))`);
    await q.query(`CREATE INDEX journeys_tenant_created ON journeys (tenant_id, created_at DESC, id DESC)`);
    await q.query(
      `CREATE INDEX journeys_tenant_contact ON journeys (tenant_id, contact_id, created_at DESC, id DESC) WHERE contact_id IS NOT NULL`,
    );
    await q.query(`CREATE TABLE touchpoints (
      id text PRIMARY KEY,
      journey_id text NOT NULL REFERENCES journeys (id) ON DELETE CASCADE,
      seq bigint GENERATED ALWAYS AS IDENTITY,
      type text NOT NULL CHECK (type IN ('page_view', 'form_submit', 'campaign', 'custom')),
      occurred_at timestamptz NOT NULL,
      url text,
      source text,
      medium text,
      campaign text,
      properties jsonb)`);
    await q.query(`CREATE INDEX touchpoints_journey_time ON touchpoints (journey_id, occurred_at, seq)`);
    await q.query(`CREATE TABLE conversions (
      id text PRIMARY KEY,
      journey_id text NOT NULL REFERENCES journeys (id) ON DELETE CASCADE,
      seq bigint GENERATED ALWAYS AS IDENTITY,
      name text NOT NULL,
      occurred_at timestamptz NOT NULL,
      value double precision)`);
    await q.query(`CREATE INDEX conversions_journey_time ON conversions (journey_id, occurred_at, seq)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE conversions');
    await q.query('DROP TABLE touchpoints');
    await q.query('DROP TABLE journeys');
  }
}
