import { eventSubject, keyEventEnvelope, STREAMS, type KeyEvent } from '@keyway/contracts';
import { jetStreamContext, ensureStream, publishEvent, type JetStreamContext } from '@keyway/messaging';
import { PrivateNats, eventually } from '@keyway/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { KeyDirectory, MemoryStore, consumeKeyEvents, type RunningConsumer } from '../../examples/key-events-consumer/consumer';

/**
 * The example a team copies (examples/key-events-consumer) against a real nats-server and the
 * stream as identity configures it (its lifecycle subjects listed one by one): each event handled
 * once, in `version` order per key, a restart with the same durable name re-handles nothing, a
 * replay from a time starts there, and `rotation_completed` ends the older secrets.
 */
const STREAM = STREAMS.keys.name;
const DURABLE = 'team-example';

const at = (n: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString();
function lifecycle(key: string, version: number, type: 'created' | 'updated' | 'disabled' | 'enabled' | 'revoked' | 'rotated' | 'rotation_completed'): KeyEvent {
  const common = { id: `evt_${key}_${version}`, occurred_at: at(version), tenant_id: 'ten_1', key_id: key, prefix: `kw_test_${key}`.padEnd(16, '0'), version, actor: { type: 'user' as const, id: 'usr_1' } };
  switch (type) {
    case 'created':
      return keyEventEnvelope({ ...common, type, data: { name: key, scopes: ['contacts:read'], environment: 'test', expires_at: null, rate_limit: null, metadata: {} } });
    case 'updated':
      return keyEventEnvelope({ ...common, type, data: { name: `${key}-renamed` } });
    case 'revoked':
      return keyEventEnvelope({ ...common, type, data: { reason: null } });
    case 'rotated':
      return keyEventEnvelope({ ...common, prefix: `kw_test_${key}${version}`.padEnd(16, '0').slice(0, 16), type, data: { previous_prefix: `kw_test_${key}`.padEnd(16, '0'), previous_valid_until: '2099-01-01T00:00:00.000Z' } });
    case 'rotation_completed':
      return keyEventEnvelope({ ...common, prefix: `kw_test_${key}${version - 1}`.padEnd(16, '0').slice(0, 16), type, data: { ended_prefixes: [`kw_test_${key}`.padEnd(16, '0')] } });
    default:
      return keyEventEnvelope({ ...common, type, data: {} });
  }
}

describe('examples/key-events-consumer against a real nats-server', () => {
  let nats: PrivateNats;
  let nc: NatsConnection;
  let ctx: JetStreamContext;
  let running: RunningConsumer | undefined;

  const publish = (e: KeyEvent) => publishEvent(ctx.js, eventSubject(e.type), e);
  /** A republish the stream cannot drop: no message id (as one after the duplicate window). */
  const republish = (e: KeyEvent) => ctx.js.publish(eventSubject(e.type), JSON.stringify(e));
  const ackPending = async () => (await ctx.jsm.consumers.info(STREAM, DURABLE)).num_ack_pending;
  const pending = async () => (await ctx.jsm.consumers.info(STREAM, DURABLE)).num_pending;

  beforeAll(async () => {
    nats = await PrivateNats.start();
    nc = await connect({ servers: nats.url });
    ctx = await jetStreamContext(nc);
    await ensureStream(ctx.jsm, { name: STREAM, subjects: [...STREAMS.keys.subjects], duplicateWindowMs: 10 * 60_000 });
  });
  afterAll(async () => {
    await running?.stop();
    await nc?.close();
    await nats?.stop();
  });

  it('handles each event once, in version order per key, and resumes after a restart without re-handling', async () => {
    const a = [lifecycle('a', 1, 'created'), lifecycle('a', 2, 'updated'), lifecycle('a', 3, 'rotated'), lifecycle('a', 4, 'rotation_completed')];
    const b = [lifecycle('b', 1, 'created'), lifecycle('b', 2, 'revoked')];
    // a.4 before a.2 and a.3 (out of order); a.1 twice (once past the dedupe).
    for (const e of [a[0]!, b[0]!, a[3]!, a[1]!, a[2]!, b[1]!]) await publish(e);
    await publish(a[1]!); // the same id within the window: the stream drops it
    await republish(a[0]!);
    expect((await ctx.jsm.streams.info(STREAM)).state.messages).toBe(7);

    const store = new MemoryStore();
    const handled: KeyEvent[] = [];
    const directory = new KeyDirectory();
    const seenGraced: boolean[] = [];
    running = await consumeKeyEvents({
      js: ctx.js, jsm: ctx.jsm, durable: DURABLE, store, retryMs: 50,
      handle: async (e) => {
        handled.push(e);
        directory.apply(e);
        if (e.key_id === 'a') seenGraced.push(directory.opens('a', 'kw_test_a0000000'));
      },
    });
    await eventually(async () => handled.length >= 6 && (await pending()) === 0 && (await ackPending()) === 0, 20_000);
    const byKey = (key: string) => handled.filter((e) => e.key_id === key).map((e) => e.version);
    expect(byKey('a')).toEqual([1, 2, 3, 4]);
    expect(byKey('b')).toEqual([1, 2]);
    expect(handled.map((e) => e.id).sort()).toEqual([...a, ...b].map((e) => e.id).sort());
    // The first secret opened the key until its rotation's grace was completed, then never again.
    expect(seenGraced).toEqual([true, true, true, false]);
    expect(directory.opens('a', 'kw_test_a3000000')).toBe(true);
    expect(directory.keys.get('b')?.status).toBe('revoked');

    // Stopped; meanwhile b.3 and another copy of a.2 arrive. The same durable name carries on after the last ack.
    await running.stop();
    running = undefined;
    await publish(lifecycle('b', 3, 'enabled'));
    await republish(a[1]!);
    const seen = jest.spyOn(store, 'seen');
    const again: KeyEvent[] = [];
    running = await consumeKeyEvents({ js: ctx.js, jsm: ctx.jsm, durable: DURABLE, store, retryMs: 50, handle: async (e) => void again.push(e) });
    await eventually(async () => again.length >= 1 && (await pending()) === 0 && (await ackPending()) === 0, 20_000);
    expect(again.map((e) => [e.key_id, e.version])).toEqual([['b', 3]]);
    // Only the two new messages were delivered: the first run's were not redelivered.
    expect(seen).toHaveBeenCalledTimes(2);
  });

  it('replays from a time on a new durable: only what the stream stored from then on', async () => {
    await running?.stop();
    running = undefined;
    const from = new Date();
    await publish(lifecycle('d', 1, 'created'));
    await publish(lifecycle('d', 2, 'disabled'));
    const replayed: KeyEvent[] = [];
    running = await consumeKeyEvents({ js: ctx.js, jsm: ctx.jsm, durable: 'team-example-replay', startTime: from, store: new MemoryStore(), handle: async (e) => void replayed.push(e) });
    await eventually(async () => replayed.length >= 2 && (await ctx.jsm.consumers.info(STREAM, 'team-example-replay')).num_pending === 0);
    expect(replayed.map((e) => [e.key_id, e.version])).toEqual([['d', 1], ['d', 2]]);
  });

  it('terminates what it cannot read and carries on', async () => {
    await running?.stop();
    const invalid: unknown[] = [];
    const handled: KeyEvent[] = [];
    const store = new MemoryStore();
    running = await consumeKeyEvents({
      js: ctx.js, jsm: ctx.jsm, durable: 'team-example-poison', filterSubject: eventSubject('revoked'), inOrder: false, store,
      handle: async (e) => void handled.push(e), onInvalid: (err) => invalid.push(err),
    });
    await eventually(async () => handled.length === 1); // b.2 from the first test: a new durable reads the stream from the start
    await ctx.js.publish(eventSubject('revoked'), 'not json');
    await ctx.js.publish(eventSubject('revoked'), JSON.stringify({ ...lifecycle('c', 2, 'revoked'), schema_version: 99 }));
    await publish(lifecycle('c', 5, 'revoked'));
    await eventually(async () => handled.length === 2 && invalid.length === 2);
    expect(handled.map((e) => [e.key_id, e.version])).toEqual([['b', 2], ['c', 5]]);
  });
});
