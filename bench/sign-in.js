'use strict';
// Sign-in latency (POST /auth/v1/session) through the real gateway and identity, with the argon2id
// parameters identity uses (apps/identity/src/users/passwords.ts). Prints p50/p99 of a successful
// sign-in, of a wrong password and of an unknown email (both pay one argon2 verification), at
// BENCH_CONCURRENCY (4) in flight. Asserts nothing; DESIGN's target: p99 < 300 ms.
//   Run: npm run bench -- sign-in   BENCH_SIGN_INS (200 per case), BENCH_CONCURRENCY (4)
const { randomBytes } = require('node:crypto');
const { build, startNats, startApp, dropDatabases, closedLoop, fmt } = require('./lib');

const TOTAL = Number(process.env.BENCH_SIGN_INS ?? 200);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);

async function post(base, path, body, headers = {}) {
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

async function main() {
  build(['gateway', 'identity']);
  const run = `keyway_bench_signin_${Date.now().toString(36)}`;
  const adminToken = randomBytes(24).toString('hex');
  const nats = await startNats();
  const started = [];
  try {
    const common = { NATS_URL: nats.url, DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${run}` };
    started.push(await startApp('identity', common));
    // Behind a "proxy", so each failing attempt can come from its own address (no back-off in the way).
    const gw = await startApp('gateway', { ...common, KEYWAY_ADMIN_TOKEN: adminToken, TRUST_PROXY: 'true', ADMIN_RATE_LIMIT_PER_MINUTE: '100000' });
    started.push(gw);
    const password = 'bench-password-1';
    const made = await post(gw.adminUrl, '/admin/v1/tenants', { name: 'Bench', admin: { name: 'Admin', email: 'admin@bench.test', password } }, { authorization: `Bearer ${adminToken}` });
    if (made.status !== 201) throw new Error(`POST /admin/v1/tenants: ${made.status} ${JSON.stringify(made.body)}`);
    // The parameters as stored: read from the member's hash in identity's own database.
    const { Client } = require('pg');
    const db = new Client({ connectionString: `${common.DATABASE_URL}_identity` });
    await db.connect();
    const stored = (await db.query(`SELECT password_hash FROM users LIMIT 1`)).rows[0].password_hash;
    await db.end();
    const params = /\$argon2id\$v=19\$(m=\d+,t=\d+,p=\d+)\$/.exec(stored)?.[1] ?? 'unknown';

    let seq = 0;
    const address = () => `10.${(seq >> 16) & 255}.${(seq >> 8) & 255}.${seq++ & 255}`;
    const cases = [
      ['right password', { email: 'admin@bench.test', password }, 200],
      ['wrong password', { email: 'admin@bench.test', password: 'not-the-password' }, 401],
      ['unknown email', { email: 'nobody@bench.test', password }, 401],
    ];
    // Warm-up: connections, JIT, identity's dummy hash.
    for (const [, body] of cases) await post(gw.url, '/auth/v1/session', body, { 'x-forwarded-for': address() });
    console.log(`\nSign-in through the gateway: argon2id ${params} (m in KiB); ${TOTAL} per case, ${CONCURRENCY} in flight, on ${require('node:os').cpus().length} cores`);
    for (const [name, body, want] of cases) {
      const r = await closedLoop(TOTAL, CONCURRENCY, async () => {
        const a = await post(gw.url, '/auth/v1/session', body, { 'x-forwarded-for': address() });
        if (a.status !== want) throw new Error(`${name}: ${a.status} ${JSON.stringify(a.body)}`);
      });
      console.log(`  ${name.padEnd(15)} p50 ${fmt(r.p50)} ms   p99 ${fmt(r.p99)} ms   max ${fmt(r.max)} ms   ${fmt(r.rate)} /s`);
    }
    console.log(`  load average at the end (1 min): ${fmt(require('node:os').loadavg()[0], 2)}   (other work on the machine skews these)`);
  } finally {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    await nats.stop();
    await dropDatabases(run).catch(() => undefined);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
