/**
 * A key-event consumer to copy (docs/events.md): a durable pull consumer on the stream KEYWAY with
 * explicit acks, idempotent (an event already applied is acked and skipped, by id and by the
 * key's `version`), resumable (the durable name: a restart carries on after the last ack), and
 * in order per key (an event beyond the next expected `version` waits for the one before it).
 * Needs `@nats-io/jetstream`, `@nats-io/transport-node` and `@keyway/contracts`.
 */
import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { parseKeyEvent, type KeyEvent } from '@keyway/contracts';

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
  stream?: string;
  /** `keyway.keys.>` (everything). With one type only, versions have gaps: set `inOrder: false`. */
  filterSubject?: string;
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
async function ensureDurable(jsm: JetStreamManager, stream: string, durable: string, filterSubject: string): Promise<void> {
  try {
    await jsm.consumers.info(stream, durable);
  } catch {
    await jsm.consumers.add(stream, {
      durable_name: durable,
      filter_subject: filterSubject,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
    });
  }
}

/** What to do with one message: its outcome is always an ack, a delayed nak or a term. */
async function settle(msg: JsMsg, o: Required<Omit<KeyEventsConsumerOptions, 'js' | 'jsm' | 'durable' | 'stream' | 'filterSubject'>>): Promise<void> {
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
  await ensureDurable(opts.jsm, stream, opts.durable, opts.filterSubject ?? 'keyway.keys.>');
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
