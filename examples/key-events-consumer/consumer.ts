/**
 * A key-event consumer to copy (docs/events.md): a durable pull consumer on the stream KEYWAY (the
 * key lifecycle events, kept for good) with explicit acks, idempotent (an event already applied is
 * acked and skipped, by id and by the key's `version`), resumable (the durable name: a restart
 * carries on after the last ack), in order per key (an event beyond the next expected `version`
 * waits for the one before it), and able to replay from a time (`startTime`, on a new durable).
 * `KeyDirectory` is a handler to start from: it folds every lifecycle type, `rotation_completed`
 * included, and fails to compile when a type is added. Needs `@nats-io/jetstream`,
 * `@nats-io/transport-node` and `@keyway/contracts`.
 */
import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { lookupIdOfPrefix, parseKeyEvent, type KeyEvent, type KeyLifecycleEvent } from '@keyway/contracts';

/**
 * How a team's consumer connects: as Keyway's read-only NATS user `reader` (docs/operations/walls.md),
 * which may consume KEYWAY and KEYWAY_DOMAIN and publish no event. Its inbox is `_INBOX.reader.…`,
 * the only one it may read. Pass the result to `connect` from `@nats-io/transport-node`.
 */
export function readerConnectionOptions(servers: string, password: string): { servers: string[]; user: string; pass: string; inboxPrefix: string; name: string } {
  return { servers: servers.split(','), user: 'reader', pass: password, inboxPrefix: '_INBOX.reader', name: 'keyway-reader' };
}

/**
 * What your service remembers of the events it applied. Keep it in your own database and write
 * `record` in the same transaction as the handler's side effect: then a crash between the two
 * cannot apply an event twice or lose it.
 */
export interface ProcessedStore {
  /** True when an event with this id was applied. */
  seen(eventId: string): Promise<boolean>;
  /** The highest `version` applied for the key, if any. */
  lastVersion(keyId: string): Promise<number | undefined>;
  record(event: KeyEvent): Promise<void>;
}

/** A ProcessedStore in memory: for a try-out and for tests, not for production. */
export class MemoryStore implements ProcessedStore {
  readonly ids = new Set<string>();
  readonly versions = new Map<string, number>();
  async seen(eventId: string): Promise<boolean> {
    return this.ids.has(eventId);
  }
  async lastVersion(keyId: string): Promise<number | undefined> {
    return this.versions.get(keyId);
  }
  async record(event: KeyEvent): Promise<void> {
    this.ids.add(event.id);
    if (event.version !== undefined) this.versions.set(event.key_id, Math.max(event.version, this.versions.get(event.key_id) ?? 0));
  }
}

export interface KeyEventsConsumerOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** One name per consuming service, shared by its replicas (e.g. `billing-key-sync`). */
  durable: string;
  /** Your side effect. Throwing retries the event later. */
  handle: (event: KeyEvent) => Promise<void>;
  store: ProcessedStore;
  /** `KEYWAY` (the lifecycle events). Usage (`used`) is in `KEYWAY_USAGE`, kept 35 days. */
  stream?: string;
  /** None: every subject of the stream. With one type only, versions have gaps: set `inOrder: false`. */
  filterSubject?: string;
  /** A new durable only: start at this time instead of the stream's first event (a replay). */
  startTime?: Date;
  /** Hold back an event whose predecessor has not been applied yet (true). */
  inOrder?: boolean;
  /** Delay before an event held back or failed is delivered again (1000 ms). */
  retryMs?: number;
  /** Deliveries after which an event held back is applied anyway: its predecessor is not coming (10). */
  maxHolds?: number;
  /** A message that can never be read (bad JSON, unknown type, a schema_version newer than yours). */
  onInvalid?: (err: unknown, msg: JsMsg) => void;
  onError?: (err: unknown, event: KeyEvent) => void;
}

export interface RunningConsumer {
  /** Stops pulling; resolves once the event in hand is settled. */
  stop(): Promise<void>;
}

/** Creates the durable consumer if it does not exist yet; an existing one keeps its position. */
async function ensureDurable(jsm: JetStreamManager, stream: string, durable: string, filterSubject?: string, startTime?: Date): Promise<void> {
  try {
    await jsm.consumers.info(stream, durable);
  } catch {
    await jsm.consumers.add(stream, {
      durable_name: durable,
      ...(filterSubject !== undefined && { filter_subject: filterSubject }),
      ack_policy: AckPolicy.Explicit,
      ...(startTime ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: startTime.toISOString() } : { deliver_policy: DeliverPolicy.All }),
    });
  }
}

/** What to do with one message: its outcome is always an ack, a delayed nak or a term. */
async function settle(msg: JsMsg, o: Required<Omit<KeyEventsConsumerOptions, 'js' | 'jsm' | 'durable' | 'stream' | 'filterSubject' | 'startTime'>>): Promise<void> {
  let event: KeyEvent;
  try {
    event = parseKeyEvent(msg.json()); // upcast to the current schema_version, then validated
  } catch (err) {
    o.onInvalid(err, msg);
    msg.term(); // in production: copy it to your dead-letter store first
    return;
  }
  if (await o.store.seen(event.id)) return msg.ack(); // a redelivery or a republish
  if (event.version !== undefined) {
    const last = await o.store.lastVersion(event.key_id);
    if (last !== undefined && event.version <= last) return msg.ack(); // stale: already applied
    // A gap: the one before arrives later (a redelivery). Unknown key: start from this one.
    if (o.inOrder && last !== undefined && event.version > last + 1 && msg.info.deliveryCount < o.maxHolds) return msg.nak(o.retryMs);
  }
  try {
    await o.handle(event);
    await o.store.record(event);
    msg.ack();
  } catch (err) {
    o.onError(err, event);
    msg.nak(o.retryMs);
  }
}

/** Starts consuming key events in the background, one at a time, until `stop()`. */
export async function consumeKeyEvents(opts: KeyEventsConsumerOptions): Promise<RunningConsumer> {
  const stream = opts.stream ?? 'KEYWAY';
  await ensureDurable(opts.jsm, stream, opts.durable, opts.filterSubject, opts.startTime);
  const settings = {
    handle: opts.handle,
    store: opts.store,
    inOrder: opts.inOrder ?? true,
    retryMs: opts.retryMs ?? 1_000,
    maxHolds: opts.maxHolds ?? 10,
    onInvalid: opts.onInvalid ?? ((err: unknown) => console.error('key event terminated', err)),
    onError: opts.onError ?? ((err: unknown) => console.error('key event failed; retrying', err)),
  };
  const consumer = await opts.js.consumers.get(stream, opts.durable);
  const messages: ConsumerMessages = await consumer.consume({ max_messages: 64 });
  const loop = (async () => {
    for await (const msg of messages) await settle(msg, settings);
  })();
  return {
    stop: async () => {
      await messages.close();
      await loop;
    },
  };
}

/** What `KeyDirectory` knows of one key. */
export interface KeyEntry {
  tenant_id: string;
  name: string;
  status: 'active' | 'disabled' | 'revoked' | 'expired';
  /** The current prefix, and the older ones still inside a rotation grace (until when). */
  prefix: string;
  graced: Map<string, string | null>;
}

/**
 * A handler to start from: a directory of keys folded from their lifecycle events. The switch is
 * exhaustive, so a new event type stops the build here until it is handled. `rotation_completed`
 * ends every older secret at once, like a revoke of `ended_prefixes`.
 */
export class KeyDirectory {
  readonly keys = new Map<string, KeyEntry>();

  apply(event: KeyEvent): void {
    if (event.type === 'used') return; // usage is in KEYWAY_USAGE; never part of a key's history
    const key = this.keys.get(event.key_id);
    if (event.type === 'created') {
      this.keys.set(event.key_id, { tenant_id: event.tenant_id, name: event.data.name, status: 'active', prefix: event.prefix, graced: new Map() });
      return;
    }
    if (!key) return; // its created event is before a replay's start time: nothing to update
    this.fold(key, event);
  }

  /** True when `prefix` opens the key at `now` as far as its events say (status and grace). */
  opens(keyId: string, prefix: string, now = new Date()): boolean {
    const key = this.keys.get(keyId);
    if (!key || key.status !== 'active' || lookupIdOfPrefix(prefix) === undefined) return false;
    if (key.prefix === prefix) return true;
    const until = key.graced.get(prefix);
    return until !== undefined && until !== null && Date.parse(until) > now.getTime();
  }

  private fold(key: KeyEntry, event: Exclude<KeyLifecycleEvent, { type: 'created' }>): void {
    switch (event.type) {
      case 'updated':
        if (event.data.name !== undefined) key.name = event.data.name;
        return;
      case 'enabled':
        if (key.status === 'disabled') key.status = 'active';
        return;
      case 'disabled':
        if (key.status === 'active') key.status = 'disabled';
        return;
      case 'rotated':
        // No rotation extends an older secret's grace: each keeps the sooner end.
        for (const [p, until] of key.graced) key.graced.set(p, sooner(until, event.data.previous_valid_until ?? event.occurred_at));
        key.graced.set(event.data.previous_prefix, event.data.previous_valid_until);
        key.prefix = event.prefix;
        return;
      case 'rotation_completed':
        key.graced.clear(); // every older secret stopped at occurred_at
        return;
      case 'revoked':
        key.status = 'revoked';
        key.graced.clear();
        return;
      case 'expired':
        key.status = 'expired';
        return;
      default:
        event satisfies never;
    }
  }
}

const sooner = (a: string | null, b: string): string => (a !== null && Date.parse(a) <= Date.parse(b) ? a : b);
