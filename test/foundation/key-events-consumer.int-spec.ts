import { EVENT_SUBJECTS, eventSubject, keyEventEnvelope, type KeyEvent } from '@keyway/contracts';
import { jetStreamContext, ensureStream, publishEvent, type JetStreamContext } from '@keyway/messaging';
import { PrivateNats, eventually } from '@keyway/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { MemoryStore, consumeKeyEvents, type RunningConsumer } from '../../examples/key-events-consumer/consumer';

/**
 * The example a team copies (examples/key-events-consumer) against a real nats-server and the
 * stream as identity configures it: each event handled once, in `version` order per key, and a
 * restart with the same durable name re-handles nothing.
 */
const STREAM = 'KEYWAY';
const DURABLE = 'team-example';

const at = (n: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString();
function lifecycle(key: string, version: number, type: 'created' | 'updated' | 'disabled' | 'enabled' | 'revoked'): KeyEvent {
  const common = { id: `evt_${key}_${version}`, occurred_at: at(version), tenant_id: 'ten_1', key_id: key, prefix: `kw_test_${key}`, version, actor: { type: 'user' as const, id: 'usr_1' } };
  switch (type) {
    case 'created':
      return keyEventEnvelope({ ...common, type, data: { name: key, scopes: ['contacts:read'], environment: 'test', expires_at: null, rate_limit: null, metadata: {} } });
    case 'updated':
      return keyEventEnvelope({ ...common, type, data: { name: `${key}-renamed` } });
    case 'revoked':
      return keyEventEnvelope({ ...common, type, data: { reason: null } });
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
    await ensureStream(ctx.jsm, { name: STREAM, subjects: [EVENT_SUBJECTS], duplicateWindowMs: 10 * 60_000 });
  });
  afterAll(async () => {
    await running?.stop();
    await nc?.close();
    await nats?.stop();
  });

  it('handles each event once, in version order per key, and resumes after a restart without re-handling', async () => {
    const a = [lifecycle('a', 1, 'created'), lifecycle('a', 2, 'updated'), lifecycle('a', 3, 'disabled')];
    const b = [lifecycle('b', 1, 'created'), lifecycle('b', 2, 'revoked')];
    const used = keyEventEnvelope({
      id: 'evt_used_1', type: 'used', occurred_at: at(9), tenant_id: 'ten_1', key_id: 'a', prefix: 'kw_test_a',
      actor: { type: 'system', id: 'gw-1' }, data: { count: 2, rate_limited: 0, first_at: at(8), last_at: at(9), scopes_used: null, secret: 'current' },
    });
    // a.3 before a.2 (out of order), a.1 and the usage event twice (once past the dedupe).
    for (const e of [a[0]!, b[0]!, a[2]!, a[1]!, used, b[1]!]) await publish(e);
    await publish(a[1]!); // the same id within the window: the stream drops it
    await republish(a[0]!);
    await republish(used);
    expect((await ctx.jsm.streams.info(STREAM)).state.messages).toBe(8);

    const store = new MemoryStore();
    const handled: KeyEvent[] = [];
    running = await consumeKeyEvents({ js: ctx.js, jsm: ctx.jsm, durable: DURABLE, store, retryMs: 50, handle: async (e) => void handled.push(e) });
    await eventually(async () => handled.length >= 6 && (await pending()) === 0 && (await ackPending()) === 0, 20_000);
    const byKey = (key: string) => handled.filter((e) => e.key_id === key && e.type !== 'used').map((e) => e.version);
    expect(byKey('a')).toEqual([1, 2, 3]);
    expect(byKey('b')).toEqual([1, 2]);
    expect(handled.map((e) => e.id).sort()).toEqual([...a, ...b, used].map((e) => e.id).sort());

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
