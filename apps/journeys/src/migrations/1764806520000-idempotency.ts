import { dropIdempotencyTableSql, idempotencyTableSql } from '@keyway/database';
import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Idempotent POSTs (DESIGN "Idempotency"): `(tenant, mode, key) → first answer`, written by
 * `@keyway/database`'s `idempotent()` in the same transaction as the journey, touchpoint or
 * conversion (and its outbox event).
 */
/** Named here, and given to `idempotent()` by the service, so the two cannot drift apart. */
export const IDEMPOTENCY_TABLE = 'idempotency_keys';

export class Idempotency1764806520000 implements MigrationInterface {
  name = 'Idempotency1764806520000';

  async up(q: QueryRunner): Promise<void> {
    for (const sql of idempotencyTableSql(IDEMPOTENCY_TABLE)) await q.query(sql);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const sql of dropIdempotencyTableSql(IDEMPOTENCY_TABLE)) await q.query(sql);
  }
}
