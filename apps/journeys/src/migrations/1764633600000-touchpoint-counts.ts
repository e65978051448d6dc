import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Each journey counts its touchpoints and conversions (DESIGN "Sizes": a journey answers
 * `touchpoints_total`, holds at most 10,000 touchpoints, and embeds only its latest ones). The
 * counts are kept by statement-level triggers on insert, so they equal the rows whatever inserts
 * them (one POST, a create with 500, a bulk load) and a read never counts 10,000 rows. Rows are
 * never deleted one by one (only with their journey, by cascade), so insert is all they follow.
 * The caps themselves are checked by the service under the journey's row lock, so that exceeding
 * one is a `conflict` with a message rather than a constraint error.
 */
export class TouchpointCounts1764633600000 implements MigrationInterface {
  name = 'TouchpointCounts1764633600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE journeys
      ADD COLUMN touchpoint_count integer NOT NULL DEFAULT 0,
      ADD COLUMN conversion_count integer NOT NULL DEFAULT 0`);
    await q.query(`UPDATE journeys j SET
      touchpoint_count = (SELECT count(*) FROM touchpoints t WHERE t.journey_id = j.id),
      conversion_count = (SELECT count(*) FROM conversions c WHERE c.journey_id = j.id)`);
    for (const [table, column] of [
      ['touchpoints', 'touchpoint_count'],
      ['conversions', 'conversion_count'],
    ] as const) {
      await q.query(`CREATE FUNCTION journeys_count_${table}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          UPDATE journeys j SET ${column} = j.${column} + n.added
          FROM (SELECT journey_id, count(*)::int AS added FROM new_rows GROUP BY journey_id) n
          WHERE j.id = n.journey_id;
          RETURN NULL;
        END $$`);
      await q.query(`CREATE TRIGGER ${table}_counted AFTER INSERT ON ${table}
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION journeys_count_${table}()`);
    }
  }

  async down(q: QueryRunner): Promise<void> {
    for (const table of ['touchpoints', 'conversions']) {
      await q.query(`DROP TRIGGER ${table}_counted ON ${table}`);
      await q.query(`DROP FUNCTION journeys_count_${table}()`);
    }
    await q.query('ALTER TABLE journeys DROP COLUMN touchpoint_count, DROP COLUMN conversion_count');
  }
}
