'use strict';
/**
 * `npm run bench -- journeys-reads`: journeys' reads at 100,000 journeys of 10 touchpoints per
 * tenant against the same reads at 1,000, on one scratch database (DESIGN, Targets: p99 within
 * 1.5×). The big tenant also holds 100,000 test-mode journeys, so the figures show that test data
 * does not slow live reads.
 *
 * It seeds straight into Postgres (through the real migrations), then times the service's own
 * read paths in-process (JourneysService: the SQL and the answer building, without NATS or the
 * gateway; `npm run bench -- domain` measures through the gateway), and prints the plans of the
 * statements behind them (EXPLAIN ANALYZE). Options, running the file itself
 * (`node apps/journeys/bench/reads.js --rounds 400`): --rounds <n> (200), --keep (leave the database).
 */
const { join } = require('node:path');
const { build, dropDatabases, numberArg, stats, fmt } = require('../../../bench/lib');

const ROOT = join(__dirname, '..', '..', '..');
const BIG = 100_000;
const SMALL = 1_000;
const TOUCHPOINTS = 10;

async function seed(ds, tenant, mode, n) {
  const chunk = 10_000;
  for (let from = 1; from <= n; from += chunk) {
    const to = Math.min(n, from + chunk - 1);
    // One statement per chunk, each its own short transaction: a long one would hold back every
    // outbox relay on this Postgres server (they read below the cluster-wide oldest transaction).
    await ds.query(
      `INSERT INTO journeys (id, tenant_id, environment, contact_id, anonymous_id, created_at)
       SELECT 'jr_' || $1 || '_' || $2 || '_' || lpad(g::text, 6, '0'), $1, $2, 'ct_' || $2 || '_' || (g % ($4::int / 5 + 1)), 'anon-' || g,
              timestamptz '2025-01-01' + g * interval '5 minutes'
         FROM generate_series($3::int, $5::int) g`,
      [tenant, mode, from, n, to],
    );
    await ds.query(
      `INSERT INTO touchpoints (id, journey_id, type, occurred_at, url, source, medium, campaign)
       SELECT 'tp_' || j.id || '_' || k, j.id, (ARRAY['page_view','form_submit','campaign','custom'])[1 + k % 4],
              j.created_at + k * interval '1 minute', 'https://example.test/p/' || k, 'newsletter', 'email', 'spring'
         FROM journeys j CROSS JOIN generate_series(1, ${TOUCHPOINTS}) k
        WHERE j.tenant_id = $1 AND j.environment = $2 AND j.id BETWEEN 'jr_' || $1 || '_' || $2 || '_' || lpad($3::text, 6, '0')
                                                            AND 'jr_' || $1 || '_' || $2 || '_' || lpad($4::text, 6, '0')`,
      [tenant, mode, from, to],
    );
  }
  await ds.query(
    `INSERT INTO conversions (id, journey_id, name, occurred_at, value)
     SELECT 'cv_' || j.id, j.id, 'signup', j.created_at + interval '1 hour', 10 FROM journeys j
      WHERE j.tenant_id = $1 AND j.environment = $2 AND right(j.id, 1) = '0'`,
    [tenant, mode],
  );
}

async function time(rounds, fn) {
  for (let i = 0; i < Math.min(20, rounds); i++) await fn(i); // warm-up
  const lat = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = process.hrtime.bigint();
    await fn(i);
    lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return stats(lat);
}

/** The plan's node types, indexes and time, on one line. */
async function plan(ds, sql, params) {
  const rows = await ds.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${sql}`, params);
  const doc = rows[0]['QUERY PLAN'][0];
  const nodes = [];
  const walk = (n) => {
    nodes.push(`${n['Node Type']}${n['Index Name'] ? ` ${n['Index Name']}` : ''}`);
    for (const c of n.Plans ?? []) walk(c);
  };
  walk(doc.Plan);
  const b = doc.Plan['Shared Hit Blocks'] + doc.Plan['Shared Read Blocks'];
  return `${doc['Execution Time'].toFixed(3)} ms, ${b} buffers: ${[...new Set(nodes)].join(' > ')}`;
}

async function main() {
  const rounds = numberArg('rounds', 200);
  build(['journeys']);
  const { openServiceDatabase, serviceDatabaseUrl } = require('@keyway/database');
  const { migrations } = require(join(ROOT, 'apps/journeys/dist/migrations'));
  const { JourneysService } = require(join(ROOT, 'apps/journeys/dist/journeys/journeys.service'));
  const entities = Object.values(require(join(ROOT, 'apps/journeys/dist/journeys/journey.entity')));
  const base = `keyway_bench_jreads_${Date.now().toString(36)}`;
  const url = serviceDatabaseUrl(`postgres://postgres@127.0.0.1:5432/${base}`, 'journeys');
  const ds = await openServiceDatabase({ url, entities, migrations });
  try {
    const t0 = Date.now();
    await seed(ds, 'big', 'live', BIG);
    await seed(ds, 'big', 'test', BIG);
    await seed(ds, 'small', 'live', SMALL);
    await ds.query('VACUUM ANALYZE journeys');
    await ds.query('VACUUM ANALYZE touchpoints');
    await ds.query('VACUUM ANALYZE conversions');
    const [{ j, t }] = await ds.query(`SELECT (SELECT count(*) FROM journeys)::int AS j, (SELECT count(*) FROM touchpoints)::int AS t`);
    console.log(`seeded ${j} journeys and ${t} touchpoints in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const service = new JourneysService(ds, undefined);
    const caller = (tenant) => ({ tenantId: tenant, mode: 'live', actor: { type: 'key', id: 'key_bench' } });
    const page = (over) => ({ page: 1, pageSize: 10, ...over });
    /** A cursor at the middle of the tenant's list: by page to the 10,000 window, then by cursor. */
    const middle = async (tenant, n) => {
      const pages = Math.min(200, n / 2 / 50);
      let p = await service.list(caller(tenant), page({ page: pages, pageSize: 50 }));
      for (let at = pages * 50; at < n / 2; at += 50) p = await service.list(caller(tenant), page({ after: p.next_cursor, pageSize: 50 }));
      return p.next_cursor;
    };
    const reads = {
      'list, first page': (tenant) => () => service.list(caller(tenant), page({})),
      'list, page 20': (tenant) => () => service.list(caller(tenant), page({ page: 20 })),
      'list, after from the middle': (tenant, n) => {
        let cursor;
        return async () => service.list(caller(tenant), page({ after: (cursor ??= await middle(tenant, n)) }));
      },
      'list, contact_id filter': (tenant) => (i) => service.list(caller(tenant), page({ contact_id: `ct_live_${i % 100}` })),
      'GET /v1/journeys/{id}': (tenant, n) => (i) => service.get(caller(tenant), `jr_${tenant}_live_${String(1 + ((i * 7919) % n)).padStart(6, '0')}`),
      'touchpoints, first page': (tenant, n) => (i) => service.listTouchpoints(caller(tenant), `jr_${tenant}_live_${String(1 + ((i * 7919) % n)).padStart(6, '0')}`, page({})),
    };
    console.log(`\nread (in-process, ${rounds} rounds)            1,000: p50 / p99 ms   100,000: p50 / p99 ms   p99 ratio`);
    for (const [name, make] of Object.entries(reads)) {
      const small = await time(rounds, make('small', SMALL));
      const big = await time(rounds, make('big', BIG));
      console.log(`${name.padEnd(40)} ${fmt(small.p50, 2).padStart(7)} / ${fmt(small.p99, 2).padEnd(9)} ${fmt(big.p50, 2).padStart(9)} / ${fmt(big.p99, 2).padEnd(12)} ${(big.p99 / small.p99).toFixed(2)}×`);
    }
    const total = await service.list(caller('big'), page({}));
    console.log(`\nbig tenant's list envelope: total ${total.total}, total_is_estimate ${total.total_is_estimate === true}, hasMore ${total.hasMore}`);

    const cursor = await ds.query(
      `SELECT created_at::text AS c, id FROM journeys WHERE tenant_id = 'big' AND environment = 'live' ORDER BY created_at DESC, id DESC OFFSET 50000 LIMIT 1`,
    );
    const listSql = `SELECT j.* FROM journeys j WHERE j.tenant_id = $1 AND j.environment = 'live'`;
    const order = 'ORDER BY j.created_at DESC, j.id DESC LIMIT 11';
    const id = 'jr_big_live_050000';
    const plans = {
      'first page': [`${listSql} ${order}`, ['big']],
      'page 20 (OFFSET 190)': [`${listSql} ${order} OFFSET 190`, ['big']],
      'after from the middle': [`${listSql} AND (j.created_at, j.id) < ($2::timestamptz, $3::text) ${order}`, ['big', cursor[0].c, cursor[0].id]],
      'contact_id filter': [`${listSql} AND j.contact_id = $2 ${order}`, ['big', 'ct_live_42']],
      'total, capped count': [`SELECT count(*) FROM (SELECT 1 FROM journeys j WHERE j.tenant_id = $1 AND j.environment = 'live' LIMIT 1001) c`, ['big']],
      'journey by id': [`SELECT * FROM journeys WHERE tenant_id = $1 AND environment = 'live' AND id = $2`, ['big', id]],
      'latest 100 touchpoints': [
        `SELECT t.* FROM unnest($1::text[]) AS j(id) CROSS JOIN LATERAL (SELECT * FROM touchpoints WHERE journey_id = j.id ORDER BY occurred_at DESC, seq DESC LIMIT 100) t`,
        [[id]],
      ],
      'touchpoints after a cursor': [`SELECT * FROM touchpoints WHERE journey_id = $1 AND (occurred_at, seq) > (now() - interval '10 years', 0) ORDER BY occurred_at, seq LIMIT 51`, [id]],
    };
    console.log('\nplans on the 100,000-journey tenant (EXPLAIN ANALYZE):');
    for (const [name, [sql, params]] of Object.entries(plans)) console.log(`  ${name.padEnd(28)} ${await plan(ds, sql, params)}`);
  } finally {
    await ds.destroy();
    if (!process.argv.includes('--keep')) await dropDatabases(`${base}_`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
