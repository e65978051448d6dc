#!/usr/bin/env node
'use strict';
/**
 * publish → audit row: events/s and p99 latency of the audit-log service (target: ≥ 10,000
 * events/s per replica, p99 < 100 ms). Plain Node on the built dist, no jest:
 *
 *   TURBO_TELEMETRY_DISABLED=1 npx turbo run build --filter=@keyway/audit-log...
 *   node apps/audit-log/bench/ingest.js [--events 20000] [--rate 10000]
 *
 * It starts a private nats-server (JetStream, temp store) and one replica of the service as a child
 * process (`dist/main.js`) against a scratch database, which it drops at the end. Two phases:
 *  1. throughput: `--events` events are published while the service is down, then it starts and
 *     drains the backlog; events/s = rows / (last recorded_at − first recorded_at).
 *  2. latency: `--events` events published at a steady `--rate` per second with the service
 *     running; latency = row's recorded_at (Postgres clock_timestamp(), same machine clock)
 *     − the moment the bench handed the event to the client.
 * Needs Postgres at TEST_DATABASE_URL / KEYWAY_TEST_PG (default postgres://postgres@127.0.0.1:5432/postgres).
 */
const { spawn } = require('node:child_process');
const { existsSync } = require('node:fs');
const { resolve } = require('node:path');
const { performance } = require('node:perf_hooks');
const { Client } = require('pg');
const { connect } = require('@nats-io/transport-node');
const { jetStreamContext, ensureStream, publishEvent } = require('@keyway/messaging');
const { build, freePort, numberArg, startNats } = require('../../../bench/lib');
const { EVENT_SUBJECTS, eventSubject, newId } = require('@keyway/contracts');
const { dropDatabases, serviceDatabaseUrl } = require('@keyway/database');

const MAIN = resolve(__dirname, '../dist/main.js');
const EVENTS = numberArg('events', 20_000);
const RATE = numberArg('rate', 10_000);
const WINDOW = 1_000; // publishes awaiting their PubAck at once
const PG_ADMIN = process.env.TEST_DATABASE_URL || process.env.KEYWAY_TEST_PG || 'postgres://postgres@127.0.0.1:5432/postgres';

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, fn, timeoutMs = 60_000, everyMs = 20) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

function killAndWait(child, signal) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((res) => {
    child.once('exit', res);
    child.kill(signal);
  });
}

let seq = 0;
/** Mostly aggregated `used` events, as production traffic will be, with some lifecycle ones. */
function makeEvent(tenant) {
  seq += 1;
  const occurred = new Date().toISOString();
  const base = {
    id: newId('event'),
    schema_version: 1,
    occurred_at: occurred,
    tenant_id: tenant,
    key_id: `key_bench${String(seq % 1_000).padStart(6, '0')}`,
    prefix: 'kw_test_bench000',
  };
  if (seq % 10 === 0) {
    return { ...base, type: 'updated', actor: { type: 'user', id: 'usr_bench' }, data: { name: `renamed ${seq}` } };
  }
  return { ...base, type: 'used', actor: { type: 'system', id: 'gateway' }, data: { count: 1 + (seq % 50), first_used_at: occurred, last_used_at: occurred } };
}

/** Publishes `n` events, at most WINDOW awaiting their ack; paced to `rate`/s when given. Returns id → hand-off time. */
async function publishAll(js, tenant, n, rate) {
  const sentAt = new Map();
  const inflight = new Set();
  const start = now();
  for (let i = 0; i < n; i++) {
    if (rate) {
      const due = start + (i * 1_000) / rate;
      const wait = due - now();
      if (wait > 1) await sleep(wait);
    }
    while (inflight.size >= WINDOW) await Promise.race(inflight);
    const e = makeEvent(tenant);
    sentAt.set(e.id, now());
    const p = publishEvent(js, eventSubject(e.type), e).then(() => inflight.delete(p));
    inflight.add(p);
  }
  await Promise.all(inflight);
  return { sentAt, seconds: (now() - start) / 1_000 };
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];

async function main() {
  build(['audit-log']);
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: the build did not make it`);
  const healthPort = await freePort();
  const dbBase = `keyway_bench_${process.pid}_${Date.now().toString(36)}`;
  const baseUrl = Object.assign(new URL(PG_ADMIN), { pathname: `/${dbBase}` }).toString();
  const stream = 'KEYWAY_BENCH';
  let nats;
  let service;
  let nc;
  let pg;
  try {
    nats = await startNats();
    nc = await connect({ servers: nats.url, name: 'audit-bench', noAsyncTraces: true });
    const { js, jsm } = await jetStreamContext(nc);
    await ensureStream(jsm, { name: stream, subjects: [EVENT_SUBJECTS] });

    // Phase 1: a backlog, then the service drains it.
    const backlog = await publishAll(js, 'ten_bench_backlog', EVENTS, 0);
    console.log(`published ${EVENTS} events in ${backlog.seconds.toFixed(2)} s (${Math.round(EVENTS / backlog.seconds)}/s) before the service started`);

    service = spawn(process.execPath, [MAIN], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: {
        ...process.env,
        NATS_URL: nats.url,
        DATABASE_URL: baseUrl,
        KEYWAY_STREAM: stream,
        HEALTH_PORT: String(healthPort),
        LOG_LEVEL: process.env.LOG_LEVEL || 'warn',
      },
    });
    pg = new Client({ connectionString: serviceDatabaseUrl(baseUrl, 'audit-log') });
    await until('the service to be ready', async () => (await fetch(`http://127.0.0.1:${healthPort}/health/ready`)).ok, 60_000, 100);
    await pg.connect();
    const count = async (tenant) =>
      Number((await pg.query('SELECT count(*) AS n FROM audit_events WHERE tenant_id = $1', [tenant])).rows[0].n);
    await until('the backlog to be recorded', async () => (await count('ten_bench_backlog')) === EVENTS, 300_000, 50);
    const span = (
      await pg.query(
        `SELECT extract(epoch FROM max(recorded_at) - min(recorded_at)) AS s FROM audit_events WHERE tenant_id = 'ten_bench_backlog'`,
      )
    ).rows[0];
    const drainRate = (EVENTS - 1) / Number(span.s);

    // Phase 2: steady traffic at RATE/s with the service running, after one unmeasured second of
    // it (connection pool, JIT and the pull pipeline settle).
    await publishAll(js, 'ten_bench_warmup', RATE, RATE);
    const live = await publishAll(js, 'ten_bench_live', EVENTS, RATE);
    await until('live events to be recorded', async () => (await count('ten_bench_live')) === EVENTS, 300_000, 50);
    const rows = (
      await pg.query(`SELECT id, extract(epoch FROM recorded_at) * 1000 AS ms FROM audit_events WHERE tenant_id = 'ten_bench_live'`)
    ).rows;
    const latencies = rows.map((r) => Number(r.ms) - live.sentAt.get(r.id)).sort((a, b) => a - b);
    const firstSent = Math.min(...live.sentAt.values());
    const lastRecorded = Math.max(...rows.map((r) => Number(r.ms)));
    // Rows written by one INSERT share a transaction id: that is the batch size the consumer reached.
    const batches = async (tenant) =>
      (await pg.query(`SELECT count(DISTINCT xmin::text) AS b FROM audit_events WHERE tenant_id = $1`, [tenant])).rows[0].b;
    const [backlogBatches, liveBatches] = [await batches('ten_bench_backlog'), await batches('ten_bench_live')];
    const dupes = Number((await pg.query('SELECT count(*) - count(DISTINCT id) AS d FROM audit_events')).rows[0].d);

    console.log('');
    console.log(`audit-log ingest, 1 replica (${process.env.AUDIT_WRITERS || 4} writers, batches up to ${process.env.AUDIT_BATCH_MAX || 1000})`);
    console.log(`  backlog drain     ${EVENTS} events: ${Math.round(drainRate).toLocaleString('en')} events/s  (target ≥ 10,000), ${backlogBatches} INSERTs, ${Math.round(EVENTS / backlogBatches)} rows each`);
    console.log(`  steady ${RATE}/s    offered ${Math.round(EVENTS / live.seconds).toLocaleString('en')}/s, recorded ${Math.round(EVENTS / ((lastRecorded - firstSent) / 1_000)).toLocaleString('en')}/s`);
    console.log(`  steady INSERTs    ${liveBatches}, ${Math.round(EVENTS / liveBatches)} rows each`);
    console.log(
      `  publish → row     p50 ${pct(latencies, 50).toFixed(1)} ms  p99 ${pct(latencies, 99).toFixed(1)} ms  max ${latencies[latencies.length - 1].toFixed(1)} ms  (target p99 < 100 ms)`,
    );
    console.log(`  duplicate rows    ${dupes}`);
    if (process.env.BENCH_TIMELINE) {
      // p99 per 500 ms of sending: tells a steady queue from a single stall.
      const byBucket = new Map();
      for (const r of rows) {
        const sent = live.sentAt.get(r.id);
        const b = Math.floor((sent - firstSent) / 500);
        if (!byBucket.has(b)) byBucket.set(b, []);
        byBucket.get(b).push(Number(r.ms) - sent);
      }
      for (const [b, l] of [...byBucket].sort((x, y) => x[0] - y[0])) {
        l.sort((x, y) => x - y);
        console.log(`    t=${(b / 2).toFixed(1)}s n=${l.length} p50 ${pct(l, 50).toFixed(0)} p99 ${pct(l, 99).toFixed(0)}`);
      }
    }
  } finally {
    await pg?.end().catch(() => undefined);
    await killAndWait(service, 'SIGTERM');
    await nc?.close().catch(() => undefined);
    await nats?.stop();
    await dropDatabases(PG_ADMIN, dbBase).catch((err) => console.error('could not drop the scratch database:', err.message));
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
