import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type PubAck,
} from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';

export type { NatsConnection, JetStreamClient, JetStreamManager, JsMsg, PubAck };

export interface MinimalLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export async function connectNats(url: string, name: string): Promise<NatsConnection> {
  return connect({
    servers: url.split(','),
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    noAsyncTraces: true,
  });
}

const nanos = (ms: number): number => ms * 1_000_000;

export interface StreamSpec {
  name: string;
  subjects: string[];
  /** How long a message id is remembered for de-duplication. */
  duplicateWindowMs?: number;
}

/** Creates the stream, or brings an existing one's subjects and window to this spec. */
export async function ensureStream(jsm: JetStreamManager, spec: StreamSpec): Promise<void> {
  const config = {
    name: spec.name,
    subjects: spec.subjects,
    duplicate_window: nanos(spec.duplicateWindowMs ?? 2 * 60_000),
  };
  try {
    const info = await jsm.streams.info(spec.name);
    const same =
      info.config.subjects?.join() === spec.subjects.join() &&
      info.config.duplicate_window === config.duplicate_window;
    if (!same) await jsm.streams.update(spec.name, config);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    try {
      await jsm.streams.add(config);
    } catch (addErr) {
      // Another replica created it between our look-up and our add.
      if (!/already in use|exists/i.test(String(addErr))) throw addErr;
    }
  }
}

function isNotFound(err: unknown): boolean {
  return /not found/i.test(String((err as Error)?.message ?? err));
}

export interface JetStreamContext {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

export async function jetStreamContext(nc: NatsConnection): Promise<JetStreamContext> {
  return { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
}

/**
 * Publishes one event with its id as the JetStream message id, so a republish after a crash is
 * de-duplicated by the server inside the stream's duplicate window.
 */
export async function publishEvent(
  js: JetStreamClient,
  subject: string,
  event: { id: string },
  opts: { timeoutMs?: number } = {},
): Promise<PubAck> {
  return js.publish(subject, JSON.stringify(event), { msgID: event.id, timeout: opts.timeoutMs ?? 5_000 });
}

export interface DurableConsumerOptions<T> {
  ctx: JetStreamContext;
  stream: string;
  durable: string;
  filterSubject: string;
  /** Validates the decoded JSON; a message that fails is terminated, never retried. */
  parse: (raw: unknown) => T;
  handle: (message: T, msg: JsMsg) => Promise<void>;
  logger: MinimalLogger;
  maxDeliver?: number;
  nakDelayMs?: number;
  ackWaitMs?: number;
  /** How many messages are pulled and held at once. */
  batch?: number;
}

export interface RunningConsumer {
  stop(): Promise<void>;
  /** Resolves when the loop has ended (after stop, or on a fatal error). */
  done: Promise<void>;
}

/**
 * A durable pull consumer with explicit acks, shared by every replica of a service. A handler
 * failure is `nak`ed with a delay; after `maxDeliver` attempts the message is terminated and logged.
 * Handlers must be idempotent: JetStream delivers at least once.
 */
export async function startDurableConsumer<T>(opts: DurableConsumerOptions<T>): Promise<RunningConsumer> {
  const maxDeliver = opts.maxDeliver ?? 10;
  const nakDelayMs = opts.nakDelayMs ?? 1_000;
  const config = {
    durable_name: opts.durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    filter_subject: opts.filterSubject,
    max_deliver: maxDeliver,
    ack_wait: nanos(opts.ackWaitMs ?? 30_000),
  };
  try {
    await opts.ctx.jsm.consumers.info(opts.stream, opts.durable);
    await opts.ctx.jsm.consumers.update(opts.stream, opts.durable, {
      filter_subject: config.filter_subject,
      max_deliver: config.max_deliver,
      ack_wait: config.ack_wait,
    });
  } catch (err) {
    if (!isNotFound(err)) throw err;
    try {
      await opts.ctx.jsm.consumers.add(opts.stream, config);
    } catch (addErr) {
      if (!/already in use|exists/i.test(String(addErr))) throw addErr;
    }
  }
  const consumer = await opts.ctx.js.consumers.get(opts.stream, opts.durable);
  const messages: ConsumerMessages = await consumer.consume({ max_messages: opts.batch ?? 256 });
  let stopping = false;

  const done = (async () => {
    for await (const msg of messages) {
      let parsed: T;
      try {
        parsed = opts.parse(msg.json());
      } catch (err) {
        opts.logger.error({ err, subject: msg.subject, seq: msg.seq }, 'invalid message terminated');
        msg.term(); // nats-server 2.9 ignores a term with a reason
        continue;
      }
      try {
        await opts.handle(parsed, msg);
        msg.ack();
      } catch (err) {
        if (msg.info.deliveryCount >= maxDeliver) {
          opts.logger.error({ err, subject: msg.subject, seq: msg.seq }, 'message failed on its last delivery');
          msg.term();
        } else {
          opts.logger.warn({ err, subject: msg.subject, seq: msg.seq, attempt: msg.info.deliveryCount }, 'handler failed, retrying');
          msg.nak(nakDelayMs);
        }
      }
      if (stopping) break;
    }
  })();

  return {
    done,
    async stop() {
      stopping = true;
      await messages.close();
      await done.catch(() => undefined);
    },
  };
}
