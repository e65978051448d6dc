'use strict';
// npm run bench -- relay-repair [--events 1000]
// How long the outbox relay takes to notice that JetStream lost events it had acknowledged, and to
// republish them: a stream is restored from a copy of its store taken before the last `--events`
// events (what an fsync that never happened, or a restore from an old backup, leaves), and the
// clock starts when the server answers again. Prints the figures; asserts nothing.
const { cpSync, rmSync } = require('node:fs');
const { build, dropDatabases, fmt, numberArg } = require('./lib');

const EVENTS = numberArg('events', 1000);
const BEFORE = 100;
const STREAM = 'BENCH_REPAIR';

async function main() {
  build(['outbox', 'messaging', 'database']);
  const { PrivateNats, eventually, portAnswers } = require('@keyway/testing');
  const { OutboxRelay, outboxTableSql, relaySequenceSql } = require('@keyway/outbox');
  const { ensureDatabase } = require('@keyway/database');
  const { ensureStream, jetStreamContext } = require('@keyway/messaging');
  const { connect } = require('@nats-io/transport-node');
  const { Client } = require('pg');

  const prefix = `keyway_bench_repair_${process.pid}_`;
  const databaseUrl = `postgres://postgres@127.0.0.1:5432/${prefix}db`;
  await ensureDatabase(databaseUrl);
  const pg = new Client({ connectionString: databaseUrl });
  await pg.connect();
  for (const sql of [
    ...outboxTableSql('outbox', 'bench_outbox'),
    ...relaySequenceSql('outbox', { createdAt: true }),
    'CREATE TABLE relay_checkpoints (name text PRIMARY KEY, last_tx xid8 NOT NULL, last_position bigint NOT NULL)',
  ])
    await pg.query(sql);

  // PrivateNats keeps its store in `storeDir` (private to TypeScript only) and restarts on its port.
  const nats = await PrivateNats.start();
  const store = nats.storeDir;
  const nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 50 });
  const ctx = await jetStreamContext(nc);
  await ensureStream(ctx.jsm, { name: STREAM, subjects: ['benchrepair.>'], duplicateWindowMs: 10 * 60_000 });
  const logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const relay = new OutboxRelay({ databaseUrl, source: { table: 'outbox', channel: 'bench_outbox' }, js: ctx.js, logger, pollMs: 100, name: 'bench' });
  relay.start();

  let n = 0;
  const write = async (count) => {
    for (let done = 0; done < count; done += 500) {
      const ids = [];
      const subjects = [];
      const payloads = [];
      for (let i = 0; i < Math.min(500, count - done); i++, n++) {
        ids.push(`evt_${n}`);
        subjects.push(`benchrepair.k${n % 50}`);
        payloads.push(JSON.stringify({ n, pad: 'x'.repeat(400) }));
      }
      await pg.query('INSERT INTO outbox (id, subject, payload) SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[])', [ids, subjects, payloads]);
    }
  };
  const messages = async () => {
    try {
      return (await ctx.jsm.streams.info(STREAM)).state.messages;
    } catch {
      return -1;
    }
  };

  await write(BEFORE);
  await eventually(async () => relay.published >= BEFORE, 30_000);
  await nats.kill();
  const backup = `${store}-backup`;
  cpSync(store, backup, { recursive: true });
  await nats.startProcess();
  await write(EVENTS);
  await eventually(async () => relay.published >= BEFORE + EVENTS && (await messages()) === BEFORE + EVENTS, 60_000);

  // The loss: the copy from before the last EVENTS events.
  await nats.kill();
  rmSync(store, { recursive: true, force: true });
  cpSync(backup, store, { recursive: true });
  await nats.startProcess();
  const t0 = performance.now();
  while (!(await portAnswers('127.0.0.1', nats.port, 100))) await new Promise((r) => setTimeout(r, 5));
  await eventually(async () => relay.lossesDetected >= 1, 60_000, 2);
  const noticed = performance.now() - t0;
  await eventually(async () => relay.repaired >= EVENTS && (await messages()) === BEFORE + EVENTS, 120_000, 5);
  const repaired = performance.now() - t0;

  console.log(`relay-repair: a stream restored without its last ${EVENTS.toLocaleString('en')} events (of ${(BEFORE + EVENTS).toLocaleString('en')})`);
  console.log(`  noticed after NATS answered again:   ${fmt(noticed, 0)} ms`);
  console.log(`  all ${relay.repaired.toLocaleString('en')} republished and recorded: ${fmt(repaired, 0)} ms  (${fmt((relay.repaired / (repaired - noticed)) * 1000, 0)} events/s after noticing)`);
  console.log(`  stream now holds ${await messages()} messages; losses detected: ${relay.lossesDetected}`);

  await relay.stop();
  await nc.close();
  await pg.end();
  await nats.stop();
  rmSync(backup, { recursive: true, force: true });
  await dropDatabases(prefix);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
