'use strict';
// Gateway memory with many keys cached (DESIGN: RSS < 250 MB with 100,000 keys cached).
// Creates BENCH_MEMORY_KEYS keys straight through identity over NATS (group-committed), then has the
// gateway verify and cache each one with a GET /v1/whoami, and prints the gateway's RSS before and
// after, and per cached key. Asserts nothing.   Run: npm run bench -- gateway-memory
const { connect } = require('@nats-io/transport-node');
const { startStack, http, rssMb } = require('./gateway');
const { fmt } = require('./lib');

const KEYS = Number(process.env.BENCH_MEMORY_KEYS ?? 100_000);
const CONCURRENCY = 32;

async function main() {
  const { Rpc } = require('@keyway/contracts');
  // A cache that holds every key for the whole run.
  const stack = await startStack({ gatewayEnv: { CACHE_TTL_MS: '3600000', CACHE_MAX_ENTRIES: String(KEYS * 2) } });
  const nc = await connect({ servers: stack.nats.url });
  try {
    const gw = stack.gateways[0];
    const idle = rssMb(gw.pid);
    let seq = 0;
    const ctx = { tenant_id: stack.tenant.id, actor: { type: 'key', id: 'key_bench' }, request_id: 'req_bench', scopes: ['keys:write', 'contacts:read'] };
    const keys = [];
    let next = 0;
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < KEYS) {
          next++;
          const m = await nc.request(
            Rpc.keysCreate,
            JSON.stringify({ pattern: Rpc.keysCreate, id: String(++seq), data: { ctx, body: { name: `mem ${seq}`, scopes: ['contacts:read'] } } }),
            { timeout: 30_000 },
          );
          const reply = m.json();
          if (reply.err) throw new Error(JSON.stringify(reply.err));
          keys.push(reply.response.key);
        }
      }),
    );
    const created = Date.now() - t0;
    let i = 0;
    let failures = 0;
    const t1 = Date.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (i < keys.length) {
          const key = keys[i++];
          const r = await http(gw.url, 'GET', '/v1/whoami', undefined, { authorization: `Bearer ${key}` });
          if (r.status !== 200) failures++;
        }
      }),
    );
    const warmed = Date.now() - t1;
    if (global.gc) global.gc();
    await new Promise((r) => setTimeout(r, 2_000));
    const full = rssMb(gw.pid);
    console.log(`\nGateway memory with ${KEYS} keys cached (created in ${fmt(created / 1000)} s, verified and cached in ${fmt(warmed / 1000)} s, ${failures} non-200)`);
    console.log(`  RSS idle:                ${fmt(idle)} MB`);
    console.log(`  RSS with ${KEYS} keys:  ${fmt(full)} MB   (DESIGN: < 250 MB)`);
    console.log(`  per cached key:          ${fmt(((full - idle) * 1024 * 1024) / KEYS, 0)} bytes`);
  } finally {
    await nc.close();
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
