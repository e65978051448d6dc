'use strict';
/**
 * `npm run bench -- audit-heads-stream`: what publishing the tenants' chain heads costs the NATS
 * server, by the number of heads each tenant's subject keeps (`AUDIT_HEADS_KEPT`, the stream's
 * per-subject limit) and the number of tenants publishing.
 *
 * Each case starts a private nats-server (JetStream on file storage, as deployed), lets the
 * service's own HeadPublisher create KEYWAY_AUDIT_HEADS with that limit, and publishes rounds of
 * one head per tenant (`mark` then `flushNow`: what the service does every AUDIT_HEAD_PUBLISH_MS
 * while every tenant's chain grows). After a first round per tenant, every head published is one
 * the subject already holds `kept` of, so the server drops one for each. It prints the server's
 * CPU per head (from /proc), the publisher's (this process: the service's side of it) and the flush's wall time: the flush runs once a second in the
 * service, and with 1,000 busy tenants it is 1,000 heads.
 *
 * Options (node apps/audit-log/bench/heads-stream.js …): --rounds 10, --tenants 100,1000,3000,
 * --kept 1,2,10.
 */
const { join } = require('node:path');
const { build, cpuMs, startNats } = require('../../../bench/lib');

const ROOT = join(__dirname, '..', '..', '..');
const list = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return (i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback).split(',').map(Number);
};
const ROUNDS = list('rounds', '10')[0];
const TENANTS = list('tenants', '100,1000,3000');
const KEPT = list('kept', '1,2,10');
const silent = { info() {}, warn: (o, m) => console.warn(m, o), error: (o, m) => console.error(m, o), debug() {} };

async function run(kept, tenants) {
  const { HeadPublisher } = require(join(ROOT, 'apps/audit-log/dist/chain/heads.js'));
  const { jetStreamContext } = require('@keyway/messaging');
  const { connect } = require('@nats-io/transport-node');
  const nats = await startNats();
  const nc = await connect({ servers: nats.url });
  try {
    const heads = new HeadPublisher(await jetStreamContext(nc), 'KEYWAY_AUDIT_HEADS', 60_000, silent, kept);
    await heads.ensureStream();
    const round = async (r) => {
      heads.mark(Array.from({ length: tenants }, (_, i) => ({ tenantId: `ten_${i}`, position: r, hash: Buffer.alloc(32, r % 256) })));
      await heads.flushNow();
    };
    // Every subject filled to its limit first: from then on, each head published drops one.
    for (let r = 1; r <= kept; r++) await round(r);
    const cpu0 = cpuMs(nats.pid);
    const own0 = process.cpuUsage();
    const walls = [];
    for (let r = kept + 1; r <= kept + ROUNDS; r++) {
      const t = performance.now();
      await round(r);
      walls.push(performance.now() - t);
    }
    const perHead = ((cpuMs(nats.pid) - cpu0) * 1000) / (ROUNDS * tenants);
    const own = process.cpuUsage(own0);
    const publisherPerHead = (own.user + own.system) / (ROUNDS * tenants);
    walls.sort((a, b) => a - b);
    const info = await (await jetStreamContext(nc)).jsm.streams.info('KEYWAY_AUDIT_HEADS');
    return { perHead, publisherPerHead, wall: walls[walls.length >> 1], msgs: info.state.messages };
  } finally {
    await nc.close();
    await nats.stop();
  }
}

async function main() {
  build(['audit-log']);
  console.log(`KEYWAY_AUDIT_HEADS: ${ROUNDS} rounds of one head per tenant (a flush each), nats-server on file storage`);
  for (const tenants of TENANTS) {
    for (const kept of KEPT) {
      const r = await run(kept, tenants);
      console.log(
        `  ${String(tenants).padStart(5)} tenants, kept ${String(kept).padStart(2)}: server CPU ${r.perHead.toFixed(0).padStart(4)} µs per head, publisher ${r.publisherPerHead.toFixed(0).padStart(3)} µs` +
          `   a flush of ${tenants} heads ${r.wall.toFixed(0).padStart(4)} ms (median)   stream holds ${r.msgs.toLocaleString('en')}`,
      );
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
