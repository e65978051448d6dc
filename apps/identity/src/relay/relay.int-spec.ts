import { EVENT_SUBJECTS, newId } from '@keyway/contracts';
import { openServiceDatabase, serviceDatabaseUrl } from '@keyway/database';
import { ensureStream, jetStreamContext, type JetStreamContext } from '@keyway/messaging';
import { eventually, startInfra, type TestInfra } from '@keyway/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { DataSource } from 'typeorm';
import { appendToStream } from '../../test/append-to-stream';
import { migrations } from '../migrations';
import { OutboxRelay, type RelayReadStrategy } from '@keyway/outbox';
import { EVENTS_OUTBOX } from '../event-store/event-store';

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * 20 writers per round whose transactions take a random time to commit, so positions commit out
 * of order, while the relay polls every few milliseconds. Returns how many distinct events
 * reached JetStream against how many were committed.
 */
async function scenario(infra: TestInfra, strategy: RelayReadStrategy, label: string) {
  const url = serviceDatabaseUrl(infra.databaseUrl, `relay_${label}`);
  const ds: DataSource = await openServiceDatabase({ url, entities: [], migrations });
  const nc: NatsConnection = await connect({ servers: infra.natsUrl });
  const ctx: JetStreamContext = await jetStreamContext(nc);
  const stream = `${infra.stream}_${label}`.toUpperCase();
  await ensureStream(ctx.jsm, { name: stream, subjects: [EVENT_SUBJECTS] });
  const relay = new OutboxRelay({ databaseUrl: url, source: EVENTS_OUTBOX, js: ctx.js, logger: silent, pollMs: 2, strategy, batchSize: 50 });
  relay.start();
  const ids: string[] = [];
  try {
    for (let round = 0; round < 8; round++) {
      await Promise.all(
        Array.from({ length: 20 }, () =>
          ds.transaction(async (tx) => {
            const stored = await appendToStream(tx, newId('key'), 0, [{ type: 'enabled', prefix: 'kw_live_abcdefgh', data: {} }], {
              tenant_id: 'ten_relay',
              actor: { type: 'system', id: 'test' },
              now: new Date(),
            });
            ids.push(stored[0]!.id);
            await new Promise((r) => setTimeout(r, Math.random() * 40));
          }),
        ),
      );
    }
    // Wait until every committed event is in the stream, or 5 s (the naive relay never gets
    // there). Not "until the relay reads nothing": pg_snapshot_xmin is cluster-wide, so another
    // database's open transaction can hold the relay back for a moment (it waits, never skips).
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline && (await ctx.jsm.streams.info(stream)).state.messages < ids.length) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 200)); // a duplicate would show up now
    const seen = new Set<string>();
    const info = await ctx.jsm.streams.info(stream);
    const consumer = await ctx.js.consumers.get(stream);
    const batch = await consumer.fetch({ max_messages: info.state.messages, expires: 2_000 });
    for await (const m of batch) {
      seen.add(m.headers?.get('Nats-Msg-Id') ?? '');
      if (seen.size >= info.state.messages) break;
    }
    return { committed: ids.length, messages: info.state.messages, distinct: ids.filter((id) => seen.has(id)).length };
  } finally {
    await relay.stop();
    await ctx.jsm.streams.delete(stream);
    await nc.close();
    await ds.destroy();
  }
}

describe('outbox relay under concurrent writers committing out of order', () => {
  let infra: TestInfra;
  beforeAll(async () => {
    infra = await startInfra('relay');
  });
  afterAll(() => infra.stop());

  it('snapshot strategy: every event reaches JetStream exactly once', async () => {
    const r = await scenario(infra, 'snapshot', 'snap');
    expect(r.committed).toBe(160);
    expect(r.messages).toBe(160);
    expect(r.distinct).toBe(160);
  });

  it('the same test catches the bug: a relay that reads position > last loses events', async () => {
    const r = await scenario(infra, 'naive-position', 'naive');
    expect(r.committed).toBe(160);
    expect(r.distinct).toBeLessThan(160);
  });

  it('a commit that notifies while a batch runs is relayed at once, not at the next poll', async () => {
    const url = serviceDatabaseUrl(infra.databaseUrl, 'relay_wake');
    const ds = await openServiceDatabase({ url, entities: [], migrations });
    const nc = await connect({ servers: infra.natsUrl });
    const ctx = await jetStreamContext(nc);
    const stream = `${infra.stream}_wake`.toUpperCase();
    await ensureStream(ctx.jsm, { name: stream, subjects: [EVENT_SUBJECTS] });
    const append = () =>
      ds.transaction((tx) =>
        appendToStream(tx, newId('key'), 0, [{ type: 'enabled', prefix: 'kw_live_abcdefgh', data: {} }], {
          tenant_id: 'ten_relay',
          actor: { type: 'system', id: 'test' },
          now: new Date(),
        }),
      );
    let commitDuringNextBatch = false;
    // The relay's batch, with a commit (and its NOTIFY) landing after the batch has read.
    class RacingRelay extends OutboxRelay {
      override async relayBatch(): Promise<number> {
        const moved = await super.relayBatch();
        if (commitDuringNextBatch && moved > 0) {
          commitDuringNextBatch = false;
          await append();
          await new Promise((r) => setTimeout(r, 50)); // the NOTIFY arrives while "relaying"
        }
        return moved;
      }
    }
    // A poll longer than the test waits: only the NOTIFY (and the second of closer looks after
    // one, for an event another database's open transaction holds back) can get it there.
    const relay = new RacingRelay({ databaseUrl: url, source: EVENTS_OUTBOX, js: ctx.js, logger: silent, pollMs: 6_000 });
    try {
      relay.start();
      await eventually(async () => relay.leader, 5_000);
      commitDuringNextBatch = true;
      await append();
      const started = Date.now();
      await eventually(async () => (await ctx.jsm.streams.info(stream)).state.messages === 2, 4_500);
      expect(Date.now() - started).toBeLessThan(4_500);
    } finally {
      await relay.stop();
      await ctx.jsm.streams.delete(stream);
      await nc.close();
      await ds.destroy();
    }
  });

  it('only one relay holds the lead; when it stops, another takes over', async () => {
    const url = serviceDatabaseUrl(infra.databaseUrl, 'relay_lead');
    const ds = await openServiceDatabase({ url, entities: [], migrations });
    const nc = await connect({ servers: infra.natsUrl });
    const ctx = await jetStreamContext(nc);
    const relays = [1, 2, 3].map(() => new OutboxRelay({ databaseUrl: url, source: EVENTS_OUTBOX, js: ctx.js, logger: silent, pollMs: 20 }));
    try {
      relays.forEach((r) => r.start());
      await eventually(async () => relays.some((r) => r.leader), 5_000);
      await new Promise((r) => setTimeout(r, 300));
      expect(relays.filter((r) => r.leader)).toHaveLength(1);
      const leader = relays.find((r) => r.leader)!;
      await leader.stop();
      await eventually(async () => relays.filter((r) => r !== leader && r.leader).length === 1, 5_000);
    } finally {
      await Promise.all(relays.map((r) => r.stop()));
      await nc.close();
      await ds.destroy();
    }
  });
});
