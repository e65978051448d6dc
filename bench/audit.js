#!/usr/bin/env node
'use strict';
/**
 * `npm run bench -- audit`: the audit trail (apps/audit-log) with its hash chain.
 *
 *  1. Ingestion of key lifecycle events (`--writers` per replica, default the service's), with one and two
 *     replicas (one writes at a time, the other stands by: started after the drain, running through
 *     the steady part), events spread over 1,000 tenants and all in one hot tenant, each with the chain on and off
 *     (AUDIT_CHAIN=off, a bench-only switch: rows stored, never sealed nor linked):
 *       - drain: `--events` events published while the service is down, then it starts; events/s
 *         from the first row written to the last one linked (chain on: the linker's cursor seen
 *         past the last message, polled every 5 ms) or written (chain off: its `recorded_at`,
 *         with the last stored sequence polled every 5 ms, so both sides carry the same polling);
 *       - steady: `--events` events at `--rate`/s with the service running; p50/p99 from the
 *         publish to the row linked (chain on: the cursor seen past its stream sequence, polled
 *         every millisecond; a row's `linked_at` is written at its insert, before its batch's turn
 *         and commit) or written (chain off: `recorded_at`). Postgres's clock and the bench's are
 *         the same machine's. `--steady 0`: the drain only.
 *  2. `GET /v1/audit-events` with 1,000,000 entries in one tenant (seeded straight into Postgres):
 *     p50/p99 of the list RPC over NATS (what the gateway forwards), first page, a mode's page,
 *     deep pages by `after`, and filters.
 *
 * Each ingestion run has its own stream, consumer and scratch database; every database is
 * dropped at the end. Options (node bench/audit.js …): --events 10000 --rate 1000 --seed 1000000 --calls 400;
 * to run a part: --tenants spread|hot|both, --replicas 1|2|both, --list 0 (no list run), --ingest 0.
 * `--repeat 3`: each ingestion case three times, chain on and off interleaved (wall rates on this
 * 2-core machine move by ±20 % between runs), on first in even rounds and off first in odd ones
 * (on, off, off, on, on, off): the cost of the chain is the ratio of the medians. `--warmup 1`
 * (default): one unmeasured chain-on drain first (the first drains of a series ran slowest).
 * `--chain-cpu 1`: the chain's own CPU per event in-process (and the baseline's, interleaved).
 * Before/after in one run: `--baseline <dir>`, a copy of an earlier apps/audit-log/dist (e.g.
 * `cp -r apps/audit-log/dist /tmp/audit-before` before a change): every ingestion case also runs
 * on it, interleaved, under the same load, with BENCH_BASELINE_ENV (JSON) added to its environment (a setting
 * against the same build: `--baseline apps/audit-log/dist`). Profiles: BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=…'.
 *
 * Besides the wall rates (noisy on a loaded 2-core box), each drain reports what is steadier: the
 * CPU per event of the service (its processes), of Postgres (the backends of its database) and of the NATS server,
 * the transactions (≈ round trips that commit) per event, the row updates per event (rows, heads,
 * cursor) and how many were HOT, the WAL and full-page images per event and the checkpoints during
 * the drain (server-wide); chain on, how the drain's batches were stored (keyway_audit_batches_total:
 * ahead, locked, refused, unlinked). Chain on, the steady run also gives publish → inserted (`recorded_at`):
 * what of the latency comes before the batch's turn and commit. `--poll-ms` (1): the cursor's polling.
 */
const { randomBytes } = require('node:crypto');
const { performance } = require('node:perf_hooks');
const { Client } = require('pg');
const { join, resolve } = require('node:path');
const { build, closedLoop, cpuMs, dropDatabases, fmt, numberArg, startApp, startChild, startNats, stats } = require('./lib');

const EVENTS = numberArg('events', 10_000);
const RATE = numberArg('rate', 1_000);
const SEED = numberArg('seed', 1_000_000);
const CALLS = numberArg('calls', 400);
const RUN = `keyway_bench_audit_${Date.now().toString(36)}`;
const CHAIN_KEY = randomBytes(32).toString('hex');
const choice = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
};
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** The middle value (the lower one of an even count). */
const median = (xs) => [...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1];
const BASELINE = choice('baseline', undefined);
/** Writers per replica (AUDIT_WRITERS; unset: the service's default). */
const WRITERS = numberArg('writers', undefined);
/** Each ingestion case this many times, chain on and off interleaved; the cost of the chain from their medians. */
const REPEAT = numberArg('repeat', 1);
/**
 * Unmeasured drains before the measured ones (the first case, chain on). The first drains of a
 * series ran slower than the later ones on this machine, service, Postgres and NATS alike (CPU per
 * event up to 1.5 times), with or without the chain, and chain on always went first.
 */
const WARMUP = numberArg('warmup', 1);
/** `--chain on|off`: only those runs (profiling one side); default both, and their ratio. */
const CHAINS = choice('chain', 'both');
/** `--steady 0`: the drain only (no run at the rate, so no latency). */
const STEADY = numberArg('steady', 1);
/** How often the steady run reads the linker's cursor (ms). */
const POLL_MS = numberArg('poll-ms', 1);

/** The service from its build, or from `dist` (the `--baseline` build). */
function startAudit(env, dist) {
  if (!dist) return startApp('audit-log', env);
  const shipped = require('../apps/audit-log/package.json').keyway?.nodeOptions ?? '';
  const nodeArgs = [...shipped.split(' '), ...(process.env.BENCH_NODE_ARGS ?? '').split(' ')].filter(Boolean);
  // Outside the repo, it finds the workspace's packages through NODE_PATH.
  return startChild('audit-log (baseline)', [...nodeArgs, join(resolve(dist), 'main.js')], { LOG_LEVEL: 'warn', NODE_PATH: join(__dirname, '..', 'node_modules'), ...env }, {
    portVar: 'HEALTH_PORT',
    ready: async (port) => {
      try {
        return (await fetch(`http://127.0.0.1:${port}/health/ready`)).status === 200;
      } catch {
        return false;
      }
    },
  });
}

async function until(what, fn, timeoutMs = 300_000, everyMs = 20) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

let n = 0;
/** A lifecycle event of a key in `tenant` (renames and enable/disable: small, as most are). */
function makeEvent(contracts, tenant) {
  n += 1;
  const base = {
    id: contracts.newId('event'),
    schema_version: 1,
    occurred_at: new Date().toISOString(),
    tenant_id: tenant,
    key_id: `key_bench${String(n % 5_000).padStart(6, '0')}`,
    prefix: n % 4 === 0 ? 'kw_test_bench000' : 'kw_live_bench000',
    actor: { type: 'key', id: 'key_benchroot' },
  };
  return n % 3 === 0 ? { ...base, type: n % 2 ? 'disabled' : 'enabled', data: {} } : { ...base, type: 'updated', data: { name: `renamed ${n}` } };
}

/**
 * Publishes `count` events (≤ 1,000 awaiting their ack), paced to `rate`/s when given; id → hand-off
 * time. `onSeq(seq, sentAt)`: each event's stream sequence, once acked.
 */
async function publishAll(ctx, count, tenantOf, rate, onSeq) {
  const { publishEvent } = require('@keyway/messaging');
  const contracts = require('@keyway/contracts');
  const sentAt = new Map();
  const inflight = new Set();
  const start = now();
  for (let i = 0; i < count; i++) {
    if (rate) {
      const wait = start + (i * 1_000) / rate - now();
      if (wait > 1) await sleep(wait);
    }
    while (inflight.size >= 1_000) await Promise.race(inflight);
    const e = makeEvent(contracts, tenantOf(i));
    const t = now();
    sentAt.set(e.id, t);
    const p = publishEvent(ctx.js, contracts.eventSubject(e.type), e).then((ack) => {
      onSeq?.(ack.seq, t);
      inflight.delete(p);
    });
    inflight.add(p);
  }
  await Promise.all(inflight);
  return sentAt;
}

/** A connection and a new key event stream `name`; streams may not share subjects, so earlier bench streams go first. */
async function freshStream(nats, name) {
  const { connect } = require('@nats-io/transport-node');
  const { jetStreamContext, ensureStream } = require('@keyway/messaging');
  const { EVENT_SUBJECTS } = require('@keyway/contracts');
  const nc = await connect({ servers: nats.url, noAsyncTraces: true });
  const ctx = await jetStreamContext(nc);
  for await (const s of ctx.jsm.streams.list()) if (s.config.name.startsWith('KEYWAY_BENCH')) await ctx.jsm.streams.delete(s.config.name);
  await ensureStream(ctx.jsm, { name, subjects: [EVENT_SUBJECTS] });
  return { nc, ctx };
}

/** CPU ms so far of the service processes, of the Postgres backends serving this database and of the NATS server. */
async function cpuOf(pg, apps, nats) {
  const pids = (await pg.query(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)).rows.map((r) => r.pid);
  const safe = (pid) => {
    try {
      return cpuMs(pid);
    } catch {
      return 0; // a backend that ended meanwhile
    }
  };
  return { app: apps.reduce((s, a) => s + safe(a.pid), 0), pg: new Map(pids.map((p) => [p, safe(p)])), nats: nats.pid ? safe(nats.pid) : NaN };
}

async function tableStats(pg) {
  const t = (await pg.query(`SELECT sum(n_tup_upd) AS n_tup_upd, sum(n_tup_hot_upd) AS n_tup_hot_upd FROM pg_stat_user_tables WHERE relname IN ('audit_events', 'audit_heads', 'audit_linker')`)).rows[0] ?? {};
  const d = (await pg.query(`SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`)).rows[0];
  // Server-wide, not the database's: checkpoints, and the WAL with its full-page images (the first
  // change to a page after a checkpoint writes the whole page), which a checkpoint mid-drain multiplies.
  const w = (await pg.query(`SELECT checkpoints_timed + checkpoints_req AS ckpt, (SELECT wal_fpi FROM pg_stat_wal) AS fpi, pg_current_wal_lsn() - '0/0' AS lsn FROM pg_stat_bgwriter`)).rows[0];
  return { upd: Number(t.n_tup_upd ?? 0), hot: Number(t.n_tup_hot_upd ?? 0), xact: Number(d.xact_commit), ckpt: Number(w.ckpt), fpi: Number(w.fpi), wal: Number(w.lsn) };
}

/** The service's keyway_audit_batches_total by `how`, from its /metrics. */
async function batchCounts(app) {
  const text = await (await fetch(`${app.url}/metrics`)).text();
  const counts = {};
  for (const m of text.matchAll(/^keyway_audit_batches_total\{[^}]*how="(\w+)"[^}]*\} (\d+)/gm)) counts[m[1]] = Number(m[2]);
  return counts;
}

/** Per event of the drain: service and Postgres CPU, committed transactions, row updates and their HOT share, WAL and full-page images; checkpoints during it. */
async function drainCost(pg, apps, nats, before, statsBefore) {
  await sleep(600); // pg_stat counters are flushed at most every 500 ms
  const after = await cpuOf(pg, apps, nats);
  const st = await tableStats(pg);
  let pgMs = 0;
  for (const [pid, ms] of after.pg) pgMs += ms - (before.pg.get(pid) ?? 0);
  const upd = st.upd - statsBefore.upd;
  return {
    appUs: ((after.app - before.app) * 1000) / EVENTS,
    pgUs: (pgMs * 1000) / EVENTS,
    natsUs: ((after.nats - before.nats) * 1000) / EVENTS,
    xacts: (st.xact - statsBefore.xact) / EVENTS,
    hot: upd > 0 ? (100 * (st.hot - statsBefore.hot)) / upd : NaN,
    updates: upd / EVENTS,
    ckpt: st.ckpt - statsBefore.ckpt,
    fpi: (st.fpi - statsBefore.fpi) / EVENTS,
    walBytes: (st.wal - statsBefore.wal) / EVENTS,
  };
}

/** One ingestion run: its own stream, database and replicas. */
async function ingestRun(nats, { replicas, chain, spread, dist, warmup = false }, index) {
  const { serviceDatabaseUrl } = require('@keyway/database');
  const stream = `KEYWAY_BENCH${index}`;
  const base = `postgres://postgres@127.0.0.1:5432/${RUN}_${index}`;
  const { nc, ctx } = await freshStream(nats, stream);
  const tenantOf = spread ? (i) => `ten_bench${String(i % 1_000).padStart(4, '0')}` : () => 'ten_benchhot';
  const env = { NATS_URL: nats.url, DATABASE_URL: base, KEYWAY_STREAM: stream, AUDIT_CHAIN_KEY: CHAIN_KEY, AUDIT_CHAIN: chain ? 'on' : 'off', AUDIT_DURABLE: `bench${index}`, ...(WRITERS ? { AUDIT_WRITERS: String(WRITERS) } : {}), ...JSON.parse(process.env.BENCH_AUDIT_ENV ?? '{}'), ...(dist ? JSON.parse(process.env.BENCH_BASELINE_ENV ?? '{}') : {}) };
  const done = chain ? 'chain_pos IS NOT NULL' : 'true';
  const apps = [];
  const pg = new Client({ connectionString: serviceDatabaseUrl(base, 'audit-log') });
  try {
    await publishAll(ctx, EVENTS, tenantOf, 0);
    // One replica writes at a time (the writer lease): the others are started after the drain, so
    // their boot does not share its CPU, and stand by through the steady run (`standby`).
    apps.push(await startAudit(env, dist));
    await pg.connect();
    // The replicas booted and published nothing yet: what they use from here on is the drain's.
    const cpuBefore = await cpuOf(pg, apps, nats);
    const statsBefore = await tableStats(pg);
    // Linked rows from the heads' counts (a row per tenant), not a scan of the growing table every
    // poll: that scan was the busiest statement on the server during a chain-on drain.
    const count = chain
      ? async () => Number((await pg.query('SELECT coalesce(sum(live_count + test_count), 0) AS n FROM audit_heads')).rows[0].n)
      : async () => Number((await pg.query(`SELECT count(*) AS n FROM audit_events WHERE ${done}`)).rows[0].n);
    const tracer = process.env.BENCH_TRACE_CONSUMER
      ? setInterval(async () => {
          const i = await ctx.jsm.consumers.info(stream, `bench${index}`).catch(() => undefined);
          if (i) console.log(`    ${Date.now()} delivered ${i.delivered.stream_seq} ack_floor ${i.ack_floor.stream_seq} ack_pending ${i.num_ack_pending} pending ${i.num_pending} waiting ${i.num_waiting} redelivered ${i.num_redelivered}`);
        }, 250)
      : undefined;
    // Chain on: drained when the linker's cursor passes the last message (the turn that moves it
    // commits the batch's links), seen every 5 ms; not max(linked_at), written as a batch's rows
    // are inserted, before its turn. Chain off: the last row's recorded_at (committed as inserted).
    let drainedAt;
    let polls = 0; // transactions of the bench's own, left out of the drain's
    // Chain off, the same polling (a statement every 5 ms on the bench's connection: the last
    // sequence stored, through the stream_seq index), so that both sides share the cores with the
    // same load from the bench; its span still comes from recorded_at.
    const reached = chain
      ? async () => (polls++, Number((await pg.query('SELECT stream_seq FROM audit_linker')).rows[0]?.stream_seq ?? 0))
      : async () => (polls++, Number((await pg.query('SELECT coalesce(max(stream_seq), 0) AS s FROM audit_events')).rows[0].s));
    await until('the backlog', async () => (await reached()) >= EVENTS, numberArg('timeout', 600_000), 5);
    if (chain) drainedAt = now();
    await until('the backlog', async () => (await count()) === EVENTS, numberArg('timeout', 600_000), 100);
    if (tracer) clearInterval(tracer);
    const span = chain
      ? (drainedAt - Number((await pg.query('SELECT extract(epoch FROM min(recorded_at)) * 1000 AS ms FROM audit_events')).rows[0].ms)) / 1000
      : (await pg.query(`SELECT extract(epoch FROM max(recorded_at) - min(recorded_at)) AS s FROM audit_events`)).rows[0].s;
    const drain = EVENTS / Number(span);
    const cost = await drainCost(pg, apps, nats, cpuBefore, { ...statsBefore, xact: statsBefore.xact + polls });
    // Chain on: how the drain's batches were stored (keyway_audit_batches_total): planned ahead,
    // under the lock, refused (rolled back, rows included, and stored again), unlinked.
    if (chain) cost.batches = await batchCounts(apps[0]);

    if (STEADY === 0 || warmup) return { drain, lat: { p50: NaN, p99: NaN, max: NaN }, dupes: 0, cost };
    for (let r = 1; r < replicas; r++) apps.push(await startAudit(env, dist));
    // One unmeasured second at the rate, then the measured run.
    await publishAll(ctx, RATE, tenantOf, RATE);
    await until('the warm-up', async () => (await count()) === EVENTS + RATE, 600_000, 100);
    // Chain on: an event is linked once the linker's cursor passes its stream sequence (the cursor
    // moves in the transaction that links it), polled every ms on a connection of its own; not
    // its linked_at, written when its row is inserted, before its batch's turn and commit.
    // Chain off: stored as its row is inserted (one statement, committed at once): recorded_at.
    const sentBySeq = new Map();
    const passedAt = new Map();
    let stopAt = Infinity; // the last message's sequence, once published
    const watch = chain ? new Client({ connectionString: serviceDatabaseUrl(base, 'audit-log') }) : undefined;
    await watch?.connect();
    let seen = Number((await pg.query('SELECT stream_seq FROM audit_linker').catch(() => ({ rows: [] }))).rows[0]?.stream_seq ?? 0);
    const poller = watch
      ? (async () => {
          while (seen < stopAt) {
            const c = Number((await watch.query('SELECT stream_seq FROM audit_linker')).rows[0]?.stream_seq ?? 0);
            const t = now();
            for (let q = seen + 1; q <= c; q++) passedAt.set(q, t);
            seen = Math.max(seen, c);
            await sleep(POLL_MS);
          }
          await watch.end();
        })()
      : undefined;
    const sentAt = await publishAll(ctx, EVENTS, tenantOf, RATE, (seq, t) => sentBySeq.set(seq, t));
    stopAt = Math.max(...sentBySeq.keys());
    await until('the steady run', async () => (await count()) === 2 * EVENTS + RATE, 600_000, 100);
    await poller;
    // Publish → the row's insert (recorded_at, clock_timestamp() at the insert): chain off, the
    // row is stored then (one statement, committed at once); chain on, its batch's turn follows.
    const rows = (await pg.query(`SELECT id, extract(epoch FROM recorded_at) * 1000 AS ms FROM audit_events WHERE id = ANY($1)`, [[...sentAt.keys()]])).rows;
    const inserted = stats(rows.map((r) => Number(r.ms) - sentAt.get(r.id)));
    let lat;
    if (chain) {
      const linkedLat = [...sentBySeq].filter(([q]) => passedAt.has(q)).map(([q, sent]) => passedAt.get(q) - sent);
      if (linkedLat.length !== EVENTS) throw new Error(`the cursor passed ${linkedLat.length} of the ${EVENTS} events`);
      // Where the time goes: publish → row inserted, then the batch's turn and commit.
      lat = { ...stats(linkedLat), inserted };
    } else {
      lat = inserted;
    }
    const dupes = Number((await pg.query('SELECT count(*) - count(DISTINCT id) AS d FROM audit_events')).rows[0].d);
    return { drain, lat, dupes, cost };
  } catch (err) {
    for (const a of apps) console.error(a.output().slice(-3_000));
    throw err;
  } finally {
    await pg.end().catch(() => undefined);
    for (const a of apps) await a.stop();
    await nc.close();
    // Now, not at the end: the next run would share the cores with this database's autovacuum.
    await dropDatabases(`${RUN}_${index}`).catch((err) => console.error('could not drop the run database:', err.message));
    await sleep(1_000);
  }
}

/** 1,000,000 entries in one tenant, straight into Postgres, then the list RPC. */
async function listRun(nats) {
  const { Rpc } = require('@keyway/contracts');
  const { serviceDatabaseUrl } = require('@keyway/database');
  const base = `postgres://postgres@127.0.0.1:5432/${RUN}_list`;
  const { nc } = await freshStream(nats, 'KEYWAY_BENCHLIST');
  const app = await startApp('audit-log', { NATS_URL: nats.url, DATABASE_URL: base, KEYWAY_STREAM: 'KEYWAY_BENCHLIST', AUDIT_CHAIN_KEY: CHAIN_KEY, AUDIT_DURABLE: 'benchlist' });
  const pg = new Client({ connectionString: serviceDatabaseUrl(base, 'audit-log') });
  try {
    await pg.connect();
    const t0 = Date.now();
    // Linked rows as the linker leaves them (hashes are not verified here: the list never reads them).
    await pg.query(
      `INSERT INTO audit_events (id, tenant_id, key_id, type, schema_version, occurred_at, prefix, actor_type, actor_id, data, stream_seq, chain_pos, hash, linked_at)
       SELECT 'evt_seed' || g, 'ten_big', 'key_seed' || (g % 2000), (ARRAY['created','updated','disabled','enabled','rotated','revoked'])[1 + g % 6], 1,
              timestamptz '2025-01-01' + g * interval '1 second', CASE WHEN g % 4 = 0 THEN 'kw_test_seed0000' ELSE 'kw_live_seed0000' END,
              CASE WHEN g % 10 = 0 THEN 'member' ELSE 'key' END, 'actor' || (g % 50), jsonb_build_object('name', 'n' || g), g, g, sha256(g::text::bytea), now()
       FROM generate_series(1, $1) AS g`,
      [SEED],
    );
    await pg.query(
      `INSERT INTO audit_heads (tenant_id, position, hash, stream_seq, live_count, test_count)
       SELECT 'ten_big', $1, sha256('x'), $1, count(*) FILTER (WHERE environment = 'live'), count(*) FILTER (WHERE environment = 'test') FROM audit_events WHERE tenant_id = 'ten_big'`,
      [SEED],
    );
    // As the linker leaves it: every seeded row is at or below its cursor (from/to reads up to it).
    await pg.query('UPDATE audit_linker SET stream_seq = $1', [SEED]);
    await pg.query('VACUUM ANALYZE audit_events');
    console.log(`  seeded ${SEED.toLocaleString('en')} entries in one tenant in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const call = async (query, environment) => {
      const data = { ctx: { tenant_id: 'ten_big', actor: { type: 'key', id: 'key_bench' }, request_id: 'r', scopes: ['audit:read'], ...(environment ? { environment } : {}) }, params: {}, query };
      const m = await nc.request(Rpc.auditEventsList, JSON.stringify({ pattern: Rpc.auditEventsList, data, id: '1' }), { timeout: 30_000 });
      const r = m.json();
      if (!r.response) throw new Error(`list answered ${JSON.stringify(r.err)}`);
      return r.response;
    };
    // A cursor deep in the trail: walk 20 pages of 50, then keep the cursor.
    let cursor;
    for (let i = 0; i < 20; i++) cursor = (await call({ pageSize: '50', ...(cursor ? { after: cursor } : {}) })).next_cursor;
    let dayCursor;
    for (let i = 0; i < 10; i++) {
      dayCursor = (await call({ from: '2025-01-05T00:00:00Z', to: '2025-01-06T00:00:00Z', pageSize: '50', ...(dayCursor ? { after: dayCursor } : {}) }, 'live')).next_cursor;
    }
    const cases = [
      ['first page (operator: both modes), 50 rows', () => call({ pageSize: '50' })],
      ['first page, a live key (its mode only)', () => call({ pageSize: '50' }, 'live')],
      ['page 200 of 50 (the deepest page= allows)', () => call({ page: '200', pageSize: '50' }, 'live')],
      ['after a cursor 1,000 rows down', () => call({ pageSize: '50', after: cursor })],
      ['filter key_id (500 of 1,000,000)', () => call({ key_id: 'key_seed7', pageSize: '50' }, 'live')],
      ['filter type=revoked', () => call({ type: 'revoked', pageSize: '50' }, 'live')],
      ['filter actor_type=member, actor_id', () => call({ actor_type: 'member', actor_id: 'actor10', pageSize: '50' })],
      ['filter from/to (one day)', () => call({ from: '2025-01-05T00:00:00Z', to: '2025-01-06T00:00:00Z', pageSize: '50' })],
      ['filter from/to (one day), a live key', () => call({ from: '2025-01-05T00:00:00Z', to: '2025-01-06T00:00:00Z', pageSize: '50' }, 'live')],
      ['filter from/to (one hour), a test key', () => call({ from: '2025-01-05T10:00:00Z', to: '2025-01-05T11:00:00Z', pageSize: '50' }, 'test')],
      ['filter from/to (one day), after a cursor', () => call({ from: '2025-01-05T00:00:00Z', to: '2025-01-06T00:00:00Z', pageSize: '50', after: dayCursor }, 'live')],
      ['filter from only (the last 30 days)', () => call({ from: '2025-01-01T00:00:00Z', pageSize: '50' }, 'live')],
    ];
    const sample = await call({ pageSize: '1' });
    console.log(`  total ${sample.total.toLocaleString('en')} (exact: the head row's count), total_is_estimate on a wide filter: ${(await call({ type: 'revoked' })).total_is_estimate === true}`);
    for (const [name, fn] of cases) {
      await closedLoop(20, 1, fn); // warm
      const r = await closedLoop(CALLS, 4, fn);
      console.log(`  ${name.padEnd(46)} p50 ${fmt(r.p50)} ms  p99 ${fmt(r.p99)} ms  (${Math.round(r.rate)} calls/s, 4 in flight)`);
    }
  } finally {
    await pg.end().catch(() => undefined);
    await app.stop();
    await nc.close();
  }
}

/**
 * The chain's own CPU per event, in this process, from a build's modules (`dist`): the seal at
 * ingest, then what the linker does per row (the baseline build: the row's content rebuilt and its
 * seal checked, then the link; this build: the link over what it sealed). CPU time, interleaved
 * with the baseline's when given: a same-conditions figure a loaded machine does not blur.
 */
function chainCpu(dist, { checkSeal }) {
  // A baseline copied outside the repo finds the workspace's packages as its process would (NODE_PATH).
  if (process.env.NODE_PATH !== join(__dirname, '..', 'node_modules')) {
    process.env.NODE_PATH = join(__dirname, '..', 'node_modules');
    require('node:module').Module._initPaths();
  }
  const C = require(join(resolve(dist), 'chain', 'chain.js'));
  const E = require(join(resolve(dist), 'audit', 'audit-event.js'));
  const key = new C.ChainKey(CHAIN_KEY);
  const events = Array.from({ length: 2_000 }, (_, i) => ({ ...makeEvent(require('@keyway/contracts'), `ten_bench${i % 1_000}`) }));
  const rows = events.map((e, i) => ({ ...e, actor_type: e.actor.type, actor_id: e.actor.id, occurred_at: new Date(e.occurred_at), stream_seq: String(i + 1) }));
  const t = process.cpuUsage();
  let prev = C.GENESIS;
  for (let i = 0; i < events.length; i++) {
    // Builds before pushRow exported chainContentOfEvent itself.
    const content = E.chainContentOfEvent ? E.chainContentOfEvent(events[i]) : E.pushRow(E.rowColumns(), events[i], i + 1);
    const seal = key.seal(content, i + 1);
    const linked = checkSeal ? E.chainContentOfRow(rows[i]) : content;
    if (checkSeal && !key.sealIsValid(linked, rows[i].stream_seq, seal)) throw new Error('seal');
    prev = key.link(prev, linked, i + 1);
  }
  const u = process.cpuUsage(t);
  return (u.user + u.system) / events.length;
}

async function main() {
  build(['audit-log']);
  if (choice('chain-cpu', '0') === '1') {
    const now = [];
    const before = [];
    for (let r = 0; r < 15; r++) {
      now.push(chainCpu(join(__dirname, '..', 'apps', 'audit-log', 'dist'), { checkSeal: false }));
      if (BASELINE) before.push(chainCpu(BASELINE, { checkSeal: true }));
    }
    console.log(`chain CPU per event (seal, then link; median of 15 × 2,000): ${fmt(median(now))} µs${BASELINE ? `, baseline ${fmt(median(before))} µs` : ''}`);
  }
  const nats = await startNats();
  try {
    console.log(`audit-log ingestion: ${EVENTS.toLocaleString('en')} lifecycle events drained, then ${EVENTS.toLocaleString('en')} at ${RATE.toLocaleString('en')}/s; ${WRITERS ?? "the service's default"} writers per replica`);
    const results = [];
    let index = 0;
    const tenants = choice('tenants', 'both');
    const reps = choice('replicas', 'both');
    const spreads = [true, false].filter((sp) => tenants === 'both' || (tenants === 'spread') === sp);
    for (let w = 0; w < WARMUP && choice('ingest', '1') !== '0'; w++) {
      const r = await ingestRun(nats, { replicas: 1, chain: true, spread: spreads[0], warmup: true }, index++);
      console.log(`  ${'warm-up (not counted)'.padEnd(50)} drain ${Math.round(r.drain).toLocaleString('en').padStart(7)} events/s   service ${fmt(r.cost.appUs, 0)} µs CPU, Postgres ${fmt(r.cost.pgUs, 0)} µs, NATS ${fmt(r.cost.natsUs, 0)} µs per event`);
    }
    for (const spread of spreads) {
      if (choice('ingest', '1') === '0') break;
      for (const replicas of [1, 2].filter((r) => reps === 'both' || String(r) === reps)) {
        // Chain on first in even rounds, off first in odd ones (on, off, off, on, …): a drift over the
        // series (the machine's minute-to-minute swings) does not always favour the same side.
        const order = (round) => (round % 2 === 0 ? [true, false] : [false, true]).filter((c) => CHAINS === 'both' || (CHAINS === 'on') === c);
        for (const [chain, dist, round] of Array.from({ length: REPEAT }, (_, round) => order(round).flatMap((c) => [[c, undefined, round], ...(BASELINE ? [[c, BASELINE, round]] : [])])).flat()) {
          const r = await ingestRun(nats, { replicas, chain, spread, dist }, index++);
          results.push({ spread, replicas, chain, baseline: Boolean(dist), round, ...r });
          const label = `${dist ? 'baseline: ' : ''}${spread ? '1,000 tenants' : 'one hot tenant'}, ${replicas} replica${replicas > 1 ? 's' : ''}, chain ${chain ? 'on ' : 'off'}`;
          console.log(
            `  ${label.padEnd(50)} drain ${Math.round(r.drain).toLocaleString('en').padStart(7)} events/s   publish → ${chain ? 'linked' : 'stored'} p50 ${fmt(r.lat.p50)} ms  p99 ${fmt(r.lat.p99)} ms  max ${fmt(r.lat.max)} ms   duplicates ${r.dupes}${r.lat.inserted ? `   (publish → inserted p50 ${fmt(r.lat.inserted.p50)} ms  p99 ${fmt(r.lat.inserted.p99)} ms)` : ''}`,
          );
          console.log(
            `  ${''.padEnd(50)} per event drained: service ${fmt(r.cost.appUs, 0)} µs CPU, Postgres ${fmt(r.cost.pgUs, 0)} µs, NATS ${fmt(r.cost.natsUs, 0)} µs CPU, ${fmt(r.cost.xacts, 3)} transactions; ${fmt(r.cost.updates, 2)} row updates (HOT ${fmt(r.cost.hot, 0)} %); WAL ${fmt(r.cost.walBytes, 0)} B, ${fmt(r.cost.fpi, 3)} full pages; checkpoints ${r.cost.ckpt}${r.cost.batches ? `; batches ${Object.entries(r.cost.batches).map(([how, n]) => `${how} ${n}`).join(', ')}` : ''}`,
          );
        }
      }
    }
    console.log(`  cost of the chain (drain with chain on / off${REPEAT > 1 ? `; medians of ${REPEAT} interleaved runs each` : ''}):`);
    const sameCase = (a, b) => a.spread === b.spread && a.replicas === b.replicas && a.baseline === b.baseline;
    for (const on of results.filter((r) => r.chain && r.round === 0 && CHAINS === 'both')) {
      const runs = (chain) => results.filter((r) => r.chain === chain && sameCase(r, on));
      const drain = (chain) => median(runs(chain).map((r) => r.drain));
      const cpu = (chain) => median(runs(chain).map((r) => r.cost.appUs + r.cost.pgUs + r.cost.natsUs));
      const each = REPEAT > 1 ? ` (runs on ${runs(true).map((r) => Math.round(r.drain).toLocaleString('en')).join(', ')}; off ${runs(false).map((r) => Math.round(r.drain).toLocaleString('en')).join(', ')})` : '';
      console.log(
        `    ${on.baseline ? 'baseline: ' : ''}${on.spread ? '1,000 tenants' : 'one hot tenant'}, ${on.replicas} replica${on.replicas > 1 ? 's' : ''}: ${fmt((100 * drain(true)) / drain(false), 0)} % (target ≥ 80 %); CPU per event (service, Postgres, NATS) off / on ${fmt((100 * cpu(false)) / cpu(true), 0)} %${each}`,
      );
    }
    if (choice('list', '1') !== '0') {
      console.log(`\nGET /v1/audit-events (the list RPC over NATS) with ${SEED.toLocaleString('en')} entries in one tenant`);
      await listRun(nats);
    }
  } finally {
    await nats.stop();
    await dropDatabases(RUN).catch((err) => console.error('could not drop the scratch databases:', err.message));
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
