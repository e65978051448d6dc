'use strict';
// Key creation through the identity service (NATS request → event store append + read models in
// one transaction → outbox relay → JetStream), beside plain single-row INSERTs of the same data
// into the same Postgres, in the same run. Prints keys/s, p99 and the ratio, and the p99 lag from
// commit to JetStream.   Run: npm run bench -- keys   (or node bench/keys-create.js)
const { build, cpuMs, startNats, startApp, dropDatabases, closedLoop, stats, fmt } = require('./lib');

const TOTAL = Number(process.env.BENCH_KEYS ?? 3000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);

async function main() {
  build(['identity', 'gateway']);
  const { connect } = require('@nats-io/transport-node');
  const { Client, Pool } = require('pg');
  const { Rpc, eventSubject } = require('@keyway/contracts');
  const { RpcClient } = require('../apps/gateway/dist/nats/rpc-client');

  const run = `keyway_bench_${Date.now().toString(36)}`;
  const nats = await startNats();
  const identity = await startApp('identity', { NATS_URL: nats.url, DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${run}`, RELAY_POLL_MS: '200' });
  const nc = await connect({ servers: nats.url });
  // The gateway's own RPC client, as in production: nc.request would add its own costs (an Error
  // with a stack trace per call) to the client's share of the 2 cores.
  const rpc = new RpcClient(nc, 'bench', 30_000);
  try {
    const call = async (subject, data) => {
      const reply = await rpc.call(subject, data);
      if (!reply.ok) throw new Error(JSON.stringify(reply.error));
      return reply.response;
    };
    // The calling key holds what it grants: a key may give only scopes it holds (DESIGN, Grants).
    const ctx = (tenant) => ({ tenant_id: tenant, actor: { type: 'key', id: 'key_bench' }, request_id: 'req_bench', scopes: ['keys:write', 'contacts:read', 'journeys:write'] });
    const tenant = await call(Rpc.tenantsCreate, { ctx: ctx(''), body: { name: 'Bench' } });

    // commit → JetStream lag: every created event, from its occurred_at (taken inside the
    // transaction, just before commit) to its arrival on a core subscriber of the stream subject.
    const lags = [];
    const sub = nc.subscribe(eventSubject('created'), {
      callback: (_e, m) => lags.push(Date.now() - Date.parse(m.json().occurred_at)),
    });

    // Key names are unique per tenant and mode: the warm-up's keys take names of their own.
    const body = (i, label = 'bench key') => ({ name: `${label} ${i}`, scopes: ['contacts:read', 'journeys:write'], metadata: { team: 'bench', i } });
    for (let i = 0; i < 200; i++) await call(Rpc.keysCreate, { ctx: ctx(tenant.tenant.id), body: body(i, 'warm-up key') }); // warm-up
    lags.length = 0;
    const cpuBefore = cpuMs(identity.pid);
    const keys = await closedLoop(TOTAL, CONCURRENCY, (i) => call(Rpc.keysCreate, { ctx: ctx(tenant.tenant.id), body: body(i) }));
    const deadline = Date.now() + 30_000;
    while (lags.length < TOTAL && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const identityCpu = cpuMs(identity.pid) - cpuBefore;
    sub.unsubscribe();
    const lag = stats(lags);

    // Baseline: the same data as plain single-row INSERTs, same Postgres, same concurrency.
    const admin = new Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${run}_baseline`);
    await admin.end();
    const pool = new Pool({ connectionString: `postgres://postgres@127.0.0.1:5432/${run}_baseline`, max: 10 });
    await pool.query(`CREATE TABLE keys (id text PRIMARY KEY, tenant_id text NOT NULL, name text NOT NULL, prefix text NOT NULL,
      scopes text[] NOT NULL, environment text NOT NULL, metadata jsonb NOT NULL, created_at timestamptz NOT NULL)`);
    const { newId, mintKey } = require('@keyway/contracts');
    const insert = (i) => {
      const b = body(i);
      return pool.query(`INSERT INTO keys VALUES ($1, $2, $3, $4, $5, 'live', $6, now())`, [newId('key'), tenant.tenant.id, b.name, mintKey('live').prefix, b.scopes, JSON.stringify(b.metadata)]);
    };
    for (let i = 0; i < 200; i++) await insert(i);
    const plain = await closedLoop(TOTAL, CONCURRENCY, insert);
    await pool.end();

    console.log(`\nKey creation, ${TOTAL} keys, ${CONCURRENCY} in flight (2 cores, identity as a child process)`);
    console.log(`  identity (NATS + event store + read models + relay): ${fmt(keys.rate, 0)} keys/s   p50 ${fmt(keys.p50, 2)} ms   p99 ${fmt(keys.p99, 2)} ms`);
    console.log(`  plain single-row INSERT (pg, same data):             ${fmt(plain.rate, 0)} rows/s   p50 ${fmt(plain.p50, 2)} ms   p99 ${fmt(plain.p99, 2)} ms`);
    console.log(`  ratio identity / INSERT:                             ${fmt((100 * keys.rate) / plain.rate, 1)} %   (target ≥ 50 %)`);
    console.log(`  identity CPU per key:                                ${fmt(identityCpu / TOTAL, 3)} ms`);
    console.log(`  commit → JetStream lag (${lag.n} events):             p50 ${fmt(lag.p50, 0)} ms   p99 ${fmt(lag.p99, 0)} ms   max ${fmt(lag.max, 0)} ms   (target p99 < 50 ms)`);
  } finally {
    rpc.close();
    await nc.close();
    await identity.stop();
    await nats.stop();
    await dropDatabases(run);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
