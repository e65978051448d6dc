import { dropIdempotencyTableSql, idempotencyTableSql } from '@keyway/database';
import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Idempotent POSTs (DESIGN, Idempotency): each key's first answer, per tenant and mode, written in
 * the same transaction as the contact, account or batch it made (`idempotent` in @keyway/database).
 */
export class Idempotency1764806500000 implements MigrationInterface {
  name = 'Idempotency1764806500000';

  async up(q: QueryRunner): Promise<void> {
    for (const sql of idempotencyTableSql()) await q.query(sql);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const sql of dropIdempotencyTableSql()) await q.query(sql);
  }
}
