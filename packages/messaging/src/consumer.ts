import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import type { JetStreamContext, MinimalLogger } from './connection';
import { isAlreadyThere, isNotFound, nanos } from './jetstream-errors';

/**
 * A durable pull consumer that hands its handler every message that has arrived, not one at a
 * time, so a service can write a batch in one statement and ack it after (moved here from audit-log).
 *
 * Batching is adaptive rather than timed: a writer takes whatever is buffered, and while it writes
 * the next batch collects. One event under light load is written at once (no linger); under heavy
 * load batches grow up to `maxBatch`. The buffer is bounded: when it is full the reader waits, and
 * the client stops pulling once its own `max_messages` are unread.
 *
 * Delivery: at least once, explicit acks after the handler resolved. A message that does not parse
 * is terminated at once; a failed batch is nak'ed with a delay, and a message that has failed
 * `maxDeliver` times is terminated and logged. A failure the handler calls permanent (bad data) is
 * retried message by message, so one bad event costs its batch a retry, not a redelivery.
 */
export interface BatchItem<T> {
  value: T;
  msg: JsMsg;
}

export interface DurableConsumerOptions<T> {
  ctx: JetStreamContext;
  stream: string;
  durable: string;
  filterSubject: string;
  /** Validates the decoded JSON; throwing terminates the message. */
  parse: (raw: unknown) => T;
  /** Must be idempotent: any item may have been handled before. */
  handle: (items: ReadonlyArray<BatchItem<T>>) => Promise<void>;
  /** True for an error no retry can fix; such a batch is split to isolate the culprit. */
  isPermanent?: (err: unknown) => boolean;
  logger: MinimalLogger;
  maxBatch?: number;
  writers?: number;
  maxDeliver?: number;
  nakDelayMs?: number;
  ackWaitMs?: number;
  /** Un-acked messages the server lets out to all replicas together. */
  maxAckPending?: number;
  /** Pause before the loop is set up again after it ended on an error. */
  restartDelayMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type Parsed<T> = { ok: true; value: T } | { ok: false };

export class DurableConsumer<T> {
  private readonly maxBatch: number;
  private readonly writers: number;
  private readonly maxDeliver: number;
  private readonly nakDelayMs: number;
  private readonly isPermanent: (err: unknown) => boolean;
  private stopping = false;
  private consuming = false;
  private messages: ConsumerMessages | undefined;
  private loop: Promise<void> = Promise.resolve();

  private constructor(private readonly opts: DurableConsumerOptions<T>) {
    this.maxBatch = opts.maxBatch ?? 1_000;
    this.writers = opts.writers ?? 2;
    this.maxDeliver = opts.maxDeliver ?? 10;
    this.nakDelayMs = opts.nakDelayMs ?? 1_000;
    this.isPermanent = opts.isPermanent ?? (() => false);
  }

  /** Creates or updates the durable consumer (fails fast if NATS refuses it), then consumes in the background. */
  static async start<T>(opts: DurableConsumerOptions<T>): Promise<DurableConsumer<T>> {
    const consumer = new DurableConsumer(opts);
    await consumer.ensureConsumer();
    consumer.loop = consumer.supervise();
    return consumer;
  }

  /** True while a pull subscription is open; for readiness. */
  get isConsuming(): boolean {
    return this.consuming;
  }

  /** Stops pulling, lets batches in hand finish (written and acked), and resolves when the loop ended. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.messages?.close().catch(() => undefined);
    await this.loop;
  }

  private async ensureConsumer(): Promise<void> {
    const { jsm } = this.opts.ctx;
    const mutable = {
      filter_subject: this.opts.filterSubject,
      max_deliver: this.maxDeliver,
      ack_wait: nanos(this.opts.ackWaitMs ?? 30_000),
      max_ack_pending: this.opts.maxAckPending ?? 20_000,
    };
    try {
      await jsm.consumers.info(this.opts.stream, this.opts.durable);
      await jsm.consumers.update(this.opts.stream, this.opts.durable, mutable);
    } catch (err) {
      if (!isNotFound(err, 'consumer')) throw err;
      try {
        await jsm.consumers.add(this.opts.stream, {
          ...mutable,
          durable_name: this.opts.durable,
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DeliverPolicy.All,
        });
      } catch (addErr) {
        // Another replica created it between our look-up and our add: it is the same consumer.
        if (!isAlreadyThere(addErr)) throw addErr;
      }
    }
  }

  /** Keeps a consume loop running until stop(): a loop that dies (consumer gone, stream recreated) is set up again. */
  private async supervise(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.consumeOnce();
      } catch (err) {
        if (this.stopping) break;
        this.opts.logger.error({ err, durable: this.opts.durable }, 'consumer loop failed; setting it up again');
      }
      // A closed connection does not come back; whoever closed it is shutting us down.
      if (this.stopping || this.opts.ctx.nc.isClosed()) break;
      await sleep(this.opts.restartDelayMs ?? 1_000);
      if (this.stopping) break;
      await this.ensureConsumer().catch((err: unknown) =>
        this.opts.logger.warn({ err, durable: this.opts.durable }, 'could not ensure the consumer; retrying'),
      );
    }
  }

  private async consumeOnce(): Promise<void> {
    const consumer = await this.opts.ctx.js.consumers.get(this.opts.stream, this.opts.durable);
    const messages = await consumer.consume({ max_messages: this.maxBatch });
    this.messages = messages;
    if (this.stopping) await messages.close();
    this.consuming = true;

    const buffer: Array<BatchItem<T>> = [];
    let ended = false;
    let idleWriters: Array<() => void> = [];
    let pumpWaiting: (() => void) | undefined;
    const wakeWriters = (): void => {
      const waiting = idleWriters;
      idleWriters = [];
      for (const wake of waiting) wake();
    };

    const pump = async (): Promise<void> => {
      try {
        for await (const msg of messages) {
          const parsed = this.parse(msg);
          if (!parsed.ok) continue;
          buffer.push({ value: parsed.value, msg });
          wakeWriters();
          while (buffer.length >= this.maxBatch) await new Promise<void>((r) => (pumpWaiting = r));
        }
      } finally {
        ended = true;
        wakeWriters();
      }
    };
    const writer = async (): Promise<void> => {
      for (;;) {
        if (buffer.length === 0) {
          if (ended) return;
          await new Promise<void>((r) => idleWriters.push(r));
          continue;
        }
        const batch = buffer.splice(0, this.maxBatch);
        const resume = pumpWaiting;
        pumpWaiting = undefined;
        resume?.();
        await this.process(batch);
      }
    };

    try {
      const results = await Promise.allSettled([pump(), ...Array.from({ length: this.writers }, () => writer())]);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      if (!this.stopping) throw new Error('the consumer stopped delivering');
    } finally {
      this.consuming = false;
    }
  }

  private parse(msg: JsMsg): Parsed<T> {
    try {
      return { ok: true, value: this.opts.parse(msg.json()) };
    } catch (err) {
      this.opts.logger.error({ err, subject: msg.subject, seq: msg.seq }, 'invalid message terminated');
      // No reason argument: nats-server 2.9 does not parse `+TERM <reason>` and would leave the
      // message pending, to be redelivered after ack_wait. The reason is in the log line instead.
      msg.term();
      return { ok: false };
    }
  }

  private async process(batch: Array<BatchItem<T>>): Promise<void> {
    try {
      await this.opts.handle(batch);
      for (const item of batch) item.msg.ack();
      return;
    } catch (err) {
      if (batch.length > 1 && this.isPermanent(err)) {
        this.opts.logger.warn({ err, size: batch.length }, 'batch refused; writing its messages one by one');
        for (const item of batch) {
          try {
            await this.opts.handle([item]);
            item.msg.ack();
          } catch (itemErr) {
            this.settleFailure(item.msg, itemErr);
          }
        }
        return;
      }
      // One line per batch: a database outage would otherwise log every message in it.
      this.opts.logger.warn({ err, size: batch.length, nakDelayMs: this.nakDelayMs }, 'batch failed; retrying later');
      for (const item of batch) this.settleFailure(item.msg, err, { quiet: true });
    }
  }

  private settleFailure(msg: JsMsg, err: unknown, opts: { quiet?: boolean } = {}): void {
    const attempt = msg.info.deliveryCount;
    if (this.isPermanent(err) || attempt >= this.maxDeliver) {
      this.opts.logger.error({ err, subject: msg.subject, seq: msg.seq, attempt }, this.isPermanent(err) ? 'message refused by the handler, terminated' : 'message failed on its last delivery, terminated');
      msg.term(); // no reason argument: see parse()
      return;
    }
    if (!opts.quiet) this.opts.logger.warn({ err, subject: msg.subject, seq: msg.seq, attempt }, 'message failed; retrying later');
    msg.nak(this.nakDelayMs);
  }
}
