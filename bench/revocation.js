'use strict';
// Revocation seen by every gateway replica: two gateway processes (same NATS, same Redis) and
// identity, each a child process. N times: create a key, warm both gateways' caches with it,
// revoke it through gateway 1 while polling both gateways with it, and measure from the revoke
// call's start until it answers, and until each gateway answers 401 key_revoked. Then the first
// request sent to each gateway after the revoke answered must be refused; every request (poll or
// check) sent after that moment and accepted is counted. Prints figures; asserts nothing.
//   Run: npm run bench -- revocation   (or node bench/revocation.js)   BENCH_REVOCATIONS (200)
const { Agent } = require('node:http');
const { request: httpRequest } = require('node:http');
const { startStack, createKey, NEVER_HIT } = require('./gateway');
const { stats, fmt } = require('./lib');

const N = Number(process.env.BENCH_REVOCATIONS ?? 200);
const agent = new Agent({ keepAlive: true, maxSockets: 16 });
const now = () => performance.now();

/** A small keep-alive GET/POST; resolves with {status, code, at (ms, performance.now())}. */
function call(base, method, path, token) {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { method, agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        const at = now();
        let code;
        try {
          code = JSON.parse(text).code;
        } catch {}
        resolve({ status: res.statusCode, code, at });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function main() {
  const stack = await startStack({ gateways: 2, services: ['identity'] });
  try {
    const [g1, g2] = stack.gateways;
    // The root key has the default limits (100 a minute); the bench's own admin key has none to speak of.
    const admin = await createKey(g1.url, stack.rootKey, { name: 'bench admin', scopes: ['keys:write', 'contacts:read'], rate_limit: NEVER_HIT });
    const answered = [];
    const visible = [[], []];
    const both = [];
    let acceptedAfter = 0;
    let polls = 0;
    let firstRefused = 0;
    for (let i = 0; i < N; i++) {
      const key = await createKey(g1.url, admin.key, { name: `revoked ${i}`, scopes: ['contacts:read'], rate_limit: NEVER_HIT });
      for (const g of [g1, g2, g1, g2]) {
        const r = await call(g.url, 'GET', '/v1/whoami', key.key);
        if (r.status !== 200) throw new Error(`warm-up of ${key.prefix}: ${r.status} ${r.code}`);
      }
      const started = now();
      let revokeAt = Infinity;
      const revoke = call(g1.url, 'POST', `/v1/keys/${key.id}/revoke`, admin.key).then((r) => {
        revokeAt = r.at;
        return r;
      });
      // One poll in flight per gateway until it answers key_revoked (and the revoke has answered).
      const poll = async (g) => {
        let seen = NaN;
        for (;;) {
          const sentAt = now();
          const r = await call(g.url, 'GET', '/v1/whoami', key.key);
          polls++;
          if (r.status >= 200 && r.status < 300 && sentAt > revokeAt) acceptedAfter++;
          if (Number.isNaN(seen) && r.status === 401 && r.code === 'key_revoked') seen = r.at - started;
          if (!Number.isNaN(seen) && revokeAt !== Infinity) return seen;
        }
      };
      const [r, s1, s2] = await Promise.all([revoke, poll(g1), poll(g2)]);
      if (r.status !== 200) throw new Error(`revoke of ${key.prefix}: ${r.status} ${r.code}`);
      answered.push(r.at - started);
      visible[0].push(s1);
      visible[1].push(s2);
      both.push(Math.max(s1, s2));
      // The first request sent to each gateway after the revoke answered.
      const checks = await Promise.all([g1, g2].map((g) => call(g.url, 'GET', '/v1/whoami', key.key)));
      for (const c of checks) {
        if (c.status >= 200 && c.status < 300) acceptedAfter++;
        if (c.status === 401 && c.code === 'key_revoked') firstRefused++;
      }
    }
    const row = (label, samples) => {
      const s = stats(samples);
      return `  ${label.padEnd(38)} p50 ${fmt(s.p50, 2).padStart(6)} ms   p99 ${fmt(s.p99, 2).padStart(6)} ms   max ${fmt(s.max, 2).padStart(6)} ms`;
    };
    console.log(`\nRevocation at two gateway replicas (same NATS and Redis), ${N} keys, each cached at both before its revoke`);
    console.log('Times from the start of POST /v1/keys/{id}/revoke (through gateway 1), polling both gateways with one request in flight each:');
    console.log(row('revoke answered', answered));
    console.log(row('401 key_revoked at gateway 1', visible[0]));
    console.log(row('401 key_revoked at gateway 2', visible[1]));
    console.log(row('visible at both replicas', both) + '   (target p99 < 50 ms)');
    console.log(`  first request to each gateway after the revoke answered: ${firstRefused} of ${2 * N} refused with 401 key_revoked`);
    console.log(`  requests sent after the revoke answered and accepted: ${acceptedAfter}   (must be 0; ${polls} polls in all)`);
  } finally {
    agent.destroy();
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
