import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import type { JetStreamContext, MinimalLogger } from './connection';
import { isAlreadyThere, isNotFound, nanos } from './jetstream-errors';

export interface SingleConsumerOptions<T> {
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
export async function startDurableConsumer<T>(opts: SingleConsumerOptions<T>): Promise<RunningConsumer> {
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
    if (!isNotFound(err, 'consumer')) throw err;
    try {
      await opts.ctx.jsm.consumers.add(opts.stream, config);
    } catch (addErr) {
      if (!isAlreadyThere(addErr)) throw addErr;
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
