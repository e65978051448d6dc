import { dropIdempotencyTableSql, idempotencyTableSql } from '@keyway/database';
import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Idempotency-Key records (tenant, mode, key → first answer), written with the resource they answer. */
export class Idempotency1796083300000 implements MigrationInterface {
  name = 'Idempotency1796083300000';

  async up(q: QueryRunner): Promise<void> {
    for (const s of idempotencyTableSql()) await q.query(s);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const s of dropIdempotencyTableSql()) await q.query(s);
  }
}
