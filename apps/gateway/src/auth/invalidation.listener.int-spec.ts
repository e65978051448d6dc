import { eventSubject, keyPrefix, newId, type KeyEvent } from '@keyway/contracts';
import { PrivateNats, eventually } from '@keyway/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { InvalidationListener } from './invalidation.listener';
import type { KeyVerifier } from './key-verifier';

/**
 * The second invalidation path (key events as JetStream stores them, read by core subscribers):
 * only events that pass the contract drop what they name. The verifier is the one thing stubbed:
 * it records what the listener asks of it.
 */
describe('InvalidationListener: key events', () => {
  let nats: PrivateNats;
  let nc: NatsConnection;
  let publisher: NatsConnection;
  let listener: InvalidationListener;
  const calls: Array<['invalidate', string[]] | ['clear']> = [];
  const verifier = {
    invalidate: (ids: readonly string[]) => void calls.push(['invalidate', [...ids]]),
    clear: () => void calls.push(['clear']),
  } as unknown as KeyVerifier;

  const lookupId = () => newId('key').slice(-8);
  const envelope = (prefix: string) => ({
    id: newId('event'),
    schema_version: 1,
    occurred_at: new Date().toISOString(),
    tenant_id: 'ten_a',
    key_id: newId('key'),
    prefix,
    version: 1,
    actor: { type: 'user' as const, id: 'usr_1' },
  });
  const send = (subject: string, body: unknown) => publisher.publish(subject, typeof body === 'string' ? body : JSON.stringify(body));
  /** Publishes a disabled event for a fresh key after `body`, and waits for it: whatever `body` caused is recorded by then. */
  const afterwards = async () => {
    const marker = lookupId();
    send(eventSubject('disabled'), { ...envelope(keyPrefix('live', marker)), type: 'disabled', data: {} } satisfies KeyEvent);
    await eventually(async () => calls.some(([what, ids]) => what === 'invalidate' && ids?.includes(marker)), 5_000);
    return calls.splice(0).filter(([what, ids]) => !(what === 'invalidate' && ids?.includes(marker)));
  };

  beforeAll(async () => {
    nats = await PrivateNats.start();
    nc = await connect({ servers: nats.url });
    publisher = await connect({ servers: nats.url });
    listener = new InvalidationListener(nc, verifier, 'gw_test', 60_000);
    await listener.start();
  });
  afterAll(async () => {
    listener?.stop();
    await publisher?.close();
    await nc?.close();
    await nats?.stop();
  });
  beforeEach(() => calls.splice(0));

  it("drops a lifecycle event's key, and both secrets of a rotation", async () => {
    const [current, previous, revoked] = [lookupId(), lookupId(), lookupId()];
    send(eventSubject('rotated'), {
      ...envelope(keyPrefix('test', current)),
      type: 'rotated',
      data: { previous_prefix: keyPrefix('test', previous), previous_valid_until: null },
    } satisfies KeyEvent);
    send(eventSubject('revoked'), { ...envelope(keyPrefix('live', revoked)), type: 'revoked', data: { reason: null } } satisfies KeyEvent);
    expect(await afterwards()).toEqual([
      ['invalidate', [current, previous]],
      ['invalidate', [revoked]],
    ]);
  });

  it('drops the secrets a completed rotation ended, and the current one', async () => {
    const [current, older, oldest] = [lookupId(), lookupId(), lookupId()];
    send(eventSubject('rotation_completed'), {
      ...envelope(keyPrefix('live', current)),
      type: 'rotation_completed',
      data: { ended_prefixes: [keyPrefix('live', older), keyPrefix('live', oldest)] },
    } satisfies KeyEvent);
    expect(await afterwards()).toEqual([['invalidate', [current, older, oldest]]]);
  });

  it('leaves used events alone', async () => {
    const id = lookupId();
    const at = new Date().toISOString();
    send(eventSubject('used'), { ...envelope(keyPrefix('live', id)), type: 'used', schema_version: 2, data: { count: 1, rate_limited: 0, first_at: at, last_at: at, scopes_used: null, secret: 'current' } } satisfies KeyEvent);
    // Not even read: the listener subscribes to the lifecycle subjects only, so garbage on the
    // usage subject does not empty the cache either.
    send(eventSubject('used'), 'not json at all');
    expect(await afterwards()).toEqual([]);
  });

  it('forgets every key for an event that does not pass the contract, rather than trusting the fields it seems to have', async () => {
    const id = lookupId();
    // Each looks like it names a key, but is not a key event this gateway can read.
    send(eventSubject('disabled'), { id: 'evt_1', type: 'disabled', prefix: keyPrefix('live', id), data: {} }); // no tenant, actor, time
    send(eventSubject('rotated'), { ...envelope(keyPrefix('live', id)), type: 'rotated', data: { previous_prefix: 7 } });
    send(eventSubject('revoked'), { ...envelope(keyPrefix('live', id)), type: 'revoked', schema_version: 99, data: { reason: null } });
    send(eventSubject('revoked'), 'not json at all');
    expect(await afterwards()).toEqual([['clear'], ['clear'], ['clear'], ['clear']]);
  });
});
