'use strict';
/**
 * `npm run bench -- domain`: contacts and journeys as customers use them, through the gateway
 * (gateway → NATS → service → Postgres, every process built and separate), at 100,000 rows per
 * tenant against the same reads at 1,000 (DESIGN, Targets: p99 within 1.5×).
 *
 * Seeds straight into the services' databases (after their own migrations ran at start): one
 * tenant with 100,000 contacts and 100,000 journeys of 10 touchpoints each, one with 1,000 of
 * each. Then, for each tenant, sequential calls (one in flight: latency, not throughput) of the
 * first page, page 20, a page reached with `after` from the middle of the list, a `q` search, a
 * `type` filter, GET contact and GET journey by id; prints p50/p99 and the 100k/1k ratio of p99.
 * Then upserts: PUT /v1/contacts/by-external-id/{id} throughput, and POST /v1/contacts/batch
 * (100 items) against 100 single PUTs. Asserts nothing.
 *   Options (node bench/domain.js …): --rounds <n> (200 per read), --upserts <n> (2000),
 *   --concurrency <n> (16, for the upserts), --keep (leave the databases).
 */
const { randomBytes } = require('node:crypto');
const { Client } = require('pg');
const { build, startNats, startApp, dropDatabases, numberArg, stats, closedLoop, fmt } = require('./lib');

const BIG = 100_000;
const SMALL = 1_000;
const TOUCHPOINTS = 10;
const ROOMY = { burst_per_second: 1e9, per_minute: 1e9, per_hour: 1e9, daily: 1e9 };
const PG = 'postgres://postgres@127.0.0.1:5432';

async function call(base, token, method, path, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}

/** A tenant (operator API) and a key of it with every domain scope and limits that never bind. */
async function tenantWithKey(gw, adminToken, name) {
  const made = await fetch(`${gw.adminUrl}/admin/v1/tenants`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name, rate_limit_ceiling: ROOMY }),
  }).then((r) => r.json());
  const key = await call(gw.url, made.root_key.key, 'POST', '/v1/keys', {
    name: 'bench',
    scopes: ['contacts:write', 'journeys:write'],
    rate_limit: ROOMY,
  });
  return { id: made.tenant.id, key: key.key };
}

/**
 * Contacts, then journeys with their touchpoints, in chunks of 10,000 (each its own statement and
 * transaction: a long one would hold back the services' outbox relays on this server).
 */
async function seed(contactsDb, journeysDb, tenant, n) {
  const types = `(ARRAY['user','lead','partner'])[1 + g % 3]`;
  for (let lo = 1; lo <= n; lo += 10_000) {
    const hi = Math.min(n, lo + 9_999);
    await contactsDb.query(
      `INSERT INTO contacts (id, tenant_id, environment, type, name, email, external_id, properties, created_at, updated_at)
       SELECT 'ct_' || $1 || '_' || g, $1, 'live', ${types}, 'Person ' || g || ' ' || md5(g::text),
              'p' || g || '@' || $1 || '.example', 'ext-' || g, '{}', timestamptz '2025-01-01' + g * interval '1 minute', now()
         FROM generate_series($2::int, $3::int) g`,
      [tenant, lo, hi],
    );
    await journeysDb.query(
      `WITH j AS (
         INSERT INTO journeys (id, tenant_id, environment, contact_id, anonymous_id, created_at)
         SELECT 'jr_' || $1 || '_' || g, $1, 'live', 'ct_' || $1 || '_' || g, 'anon-' || g, timestamptz '2025-01-01' + g * interval '1 minute'
           FROM generate_series($2::int, $3::int) g
         RETURNING id, created_at)
       INSERT INTO touchpoints (id, journey_id, type, occurred_at, url, source, medium, campaign)
       SELECT 'tp_' || j.id || '_' || k, j.id, (ARRAY['page_view','form_submit','campaign','custom'])[1 + k % 4], j.created_at + k * interval '1 second',
              'https://example.test/' || k, 'ads', 'cpc', 'winter'
         FROM j CROSS JOIN generate_series(1, ${TOUCHPOINTS}) k`,
      [tenant, lo, hi],
    );
  }
  for (const db of [contactsDb, journeysDb]) await db.query('VACUUM ANALYZE');
}

/** `count` sequential calls of `path(i)` after a warm-up: latency of one call at a time. */
async function timeReads(gwUrl, key, rounds, path) {
  for (let i = 0; i < Math.min(20, rounds); i++) await call(gwUrl, key, 'GET', path(i));
  const lat = [];
  for (let i = 0; i < rounds; i++) {
    const t = process.hrtime.bigint();
    await call(gwUrl, key, 'GET', path(i));
    lat.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return stats(lat);
}

/** The `next_cursor` at about row `row` of a list, reached within the page window then by cursor. */
async function cursorAt(gwUrl, key, list, row) {
  const pageSize = 50;
  const page = Math.min(Math.floor(row / pageSize), 10_000 / pageSize);
  let cursor = (await call(gwUrl, key, 'GET', `${list}?page=${page}&pageSize=${pageSize}`)).next_cursor;
  for (let at = page * pageSize; at < row && cursor; at += pageSize) {
    cursor = (await call(gwUrl, key, 'GET', `${list}?pageSize=${pageSize}&after=${encodeURIComponent(cursor)}`)).next_cursor;
  }
  return cursor;
}

async function reads(gwUrl, tenant, n, rounds) {
  const ids = (prefix) => (i) => `${prefix}_${tenant.id}_${1 + ((i * 7919) % n)}`;
  const contactId = ids('ct');
  const journeyId = ids('jr');
  const midContacts = await cursorAt(gwUrl, tenant.key, '/v1/contacts', n / 2);
  const midJourneys = await cursorAt(gwUrl, tenant.key, '/v1/journeys', n / 2);
  const cases = {
    'contacts: first page': () => '/v1/contacts',
    'contacts: page 20': () => '/v1/contacts?page=20',
    'contacts: after, mid-list': () => `/v1/contacts?after=${encodeURIComponent(midContacts)}`,
    'contacts: q search': (i) => `/v1/contacts?q=${encodeURIComponent(`Person ${100 + (i % 800)}`)}`,
    'contacts: type filter': (i) => `/v1/contacts?type=${['user', 'lead', 'partner'][i % 3]}`,
    'journeys: first page': () => '/v1/journeys',
    'journeys: page 20': () => '/v1/journeys?page=20',
    'journeys: after, mid-list': () => `/v1/journeys?after=${encodeURIComponent(midJourneys)}`,
    'GET /v1/contacts/{id}': (i) => `/v1/contacts/${contactId(i)}`,
    'GET /v1/journeys/{id}': (i) => `/v1/journeys/${journeyId(i)}`,
  };
  const out = {};
  for (const [name, path] of Object.entries(cases)) out[name] = await timeReads(gwUrl, tenant.key, rounds, path);
  return out;
}

async function upserts(gwUrl, key, total, concurrency) {
  const run = randomBytes(3).toString('hex');
  const item = (i) => ({ type: 'user', name: `Upserted ${i}`, email: `u${run}-${i}@example.test` });
  const single = await closedLoop(total, concurrency, (i) => call(gwUrl, key, 'PUT', `/v1/contacts/by-external-id/up-${run}-${i}`, item(i)));
  // The same rows again: replacements (200) instead of creations (201).
  const replace = await closedLoop(total, concurrency, (i) => call(gwUrl, key, 'PUT', `/v1/contacts/by-external-id/up-${run}-${i}`, item(i)));
  const batches = Math.max(1, Math.floor(total / 100));
  const batch = await closedLoop(batches, Math.min(concurrency, 4), (b) =>
    call(gwUrl, key, 'POST', '/v1/contacts/batch', { items: Array.from({ length: 100 }, (_, k) => ({ external_id: `bt-${run}-${b}-${k}`, ...item(`b${b}-${k}`) })) }),
  );
  return { single, replace, batch, batches };
}

async function main() {
  const rounds = numberArg('rounds', 200);
  const upsertCount = numberArg('upserts', 2000);
  const concurrency = numberArg('concurrency', 16);
  build(['gateway', 'identity', 'contacts', 'journeys']);
  const run = `keyway_bench_${Date.now().toString(36)}`;
  const adminToken = randomBytes(24).toString('hex');
  const nats = await startNats();
  const started = [];
  const dbs = [];
  try {
    const env = { NATS_URL: nats.url, DATABASE_URL: `${PG}/${run}` };
    for (const app of ['identity', 'contacts', 'journeys']) started.push(await startApp(app, env));
    const gw = await startApp('gateway', { ...env, KEYWAY_ADMIN_TOKEN: adminToken });
    started.push(gw);
    const big = await tenantWithKey(gw, adminToken, 'Big');
    const small = await tenantWithKey(gw, adminToken, 'Small');

    const contactsDb = new Client({ connectionString: `${PG}/${run}_contacts` });
    const journeysDb = new Client({ connectionString: `${PG}/${run}_journeys` });
    for (const c of [contactsDb, journeysDb]) {
      await c.connect();
      dbs.push(c);
    }
    let t = Date.now();
    await seed(contactsDb, journeysDb, big.id, BIG);
    await seed(contactsDb, journeysDb, small.id, SMALL);
    console.log(`seeded ${BIG} + ${SMALL} contacts and journeys (${TOUCHPOINTS} touchpoints each) in ${((Date.now() - t) / 1000).toFixed(1)} s`);

    t = Date.now();
    const atBig = await reads(gw.url, big, BIG, rounds);
    const atSmall = await reads(gw.url, small, SMALL, rounds);
    console.log(`\nreads through the gateway, one at a time, ${rounds} each (ms; ratio = 100k p99 / 1k p99, target ≤ 1.5):`);
    console.log(`  ${'read'.padEnd(28)} ${'100k p50'.padStart(9)} ${'100k p99'.padStart(9)} ${'1k p50'.padStart(8)} ${'1k p99'.padStart(8)} ${'ratio'.padStart(6)}`);
    for (const name of Object.keys(atBig)) {
      const b = atBig[name];
      const s = atSmall[name];
      console.log(`  ${name.padEnd(28)} ${fmt(b.p50, 2).padStart(9)} ${fmt(b.p99, 2).padStart(9)} ${fmt(s.p50, 2).padStart(8)} ${fmt(s.p99, 2).padStart(8)} ${fmt(b.p99 / s.p99, 2).padStart(6)}`);
    }
    console.log(`  (${((Date.now() - t) / 1000).toFixed(1)} s)`);

    const u = await upserts(gw.url, small.key, upsertCount, concurrency);
    console.log(`\nupserts through the gateway (${concurrency} in flight):`);
    console.log(`  PUT by external id, creating   ${fmt(u.single.rate, 0)} /s  p50 ${fmt(u.single.p50, 2)} ms  p99 ${fmt(u.single.p99, 2)} ms`);
    console.log(`  PUT by external id, replacing  ${fmt(u.replace.rate, 0)} /s  p50 ${fmt(u.replace.p50, 2)} ms  p99 ${fmt(u.replace.p99, 2)} ms`);
    console.log(`  POST /v1/contacts/batch (100)  ${fmt(u.batch.rate * 100, 0)} items/s (${fmt(u.batch.rate, 1)} batches/s, p50 ${fmt(u.batch.p50, 1)} ms)`);
    console.log(`  batch vs 100 single PUTs       ${fmt((u.batch.rate * 100) / u.single.rate, 1)}× the items per second`);
  } finally {
    for (const c of dbs) await c.end().catch(() => undefined);
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    await nats.stop();
    if (!process.argv.includes('--keep')) await dropDatabases(`${run}_`).catch((err) => console.error(`could not drop ${run}_*: ${err.message}`));
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
